package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/db/certs"
	"github.com/xroad-lb/lbkit/testenv"
)

// pgCluster is the serverconf replication of a cluster, built once for the package:
// a primary set up by db.SetupPrimary, a standby streaming from it (db.SetupSecondary) and a
// second standby whose primary_conninfo points at a closed port (never streaming).
type pgCluster struct {
	primary, standby, stuck *testenv.Postgres
	shared                  string
}

var (
	clusterOnce sync.Once
	theCluster  *pgCluster
	clusterErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if c := theCluster; c != nil {
		for _, p := range []*testenv.Postgres{c.stuck, c.standby, c.primary} {
			if p != nil {
				_ = p.Close()
			}
		}
		_ = os.RemoveAll(c.shared)
	}
	os.Exit(code)
}

// cluster returns the package's replication cluster (the serverconf user's password is
// testenv's node password, so a node's db.properties only needs the port).
func cluster(t *testing.T) *pgCluster {
	t.Helper()
	testenv.RequirePostgres(t)
	clusterOnce.Do(func() { theCluster, clusterErr = startCluster(context.Background()) })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return theCluster
}

func startCluster(ctx context.Context) (c *pgCluster, err error) {
	bin, err := testenv.PostgresBinDir()
	if err != nil {
		return nil, err
	}
	c = &pgCluster{}
	if c.shared, err = os.MkdirTemp("", "doctor-cluster-"); err != nil {
		return nil, err
	}
	if err := os.Chmod(c.shared, 0o755); err != nil {
		return c, err
	}
	uid, gid, chown, err := testenv.PostgresOwner()
	if err != nil {
		return c, err
	}
	dir := filepath.Join(c.shared, "certs")
	opts := certs.Options{Chown: chown, UID: uid, GID: gid}
	if _, _, err := certs.WriteCA(dir, opts); err != nil {
		return c, err
	}
	files := func(n string) (string, string, string) {
		return filepath.Join(dir, n, certs.CACertFile), filepath.Join(dir, n, certs.NodeCertFile), filepath.Join(dir, n, certs.NodeKeyFile)
	}
	for _, n := range []string{"primary", "replica1"} {
		if _, err := certs.WriteNode(dir, filepath.Join(dir, n), n, opts); err != nil {
			return c, err
		}
	}
	if c.primary, err = testenv.StartPostgres(ctx, testenv.PostgresOptions{}); err != nil {
		return c, err
	}
	ca, cert, key := files("primary")
	super := db.Conn{Host: c.primary.Host, Port: c.primary.Port, User: "postgres", Password: c.primary.Password, DBName: "postgres", SSLMode: "disable"}
	if _, err := db.SetupPrimary(ctx, super, db.PrimaryOptions{CAFile: ca, CertFile: cert, KeyFile: key,
		ListenAddresses: c.primary.Host, Replicas: []string{"replica1"}, ServerconfPassword: nodeDBPassword}); err != nil {
		return c, fmt.Errorf("setup primary: %w\n%s", err, c.primary.Log(20))
	}
	if err := c.primary.Exec(ctx, "postgres", "CREATE DATABASE serverconf OWNER serverconf"); err != nil {
		return c, err
	}
	// The primary speaks TLS after its reload (asynchronous): wait for it before the base backup.
	tlsConn := super
	tlsConn.SSLMode, tlsConn.CAFile = "verify-ca", ca
	for {
		conn, err := tlsConn.Connect(ctx)
		if err == nil {
			_ = conn.Close(ctx)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ca, cert, key = files("replica1")
	standby := func(name string) (*testenv.Postgres, error) {
		dataDir := filepath.Join(c.shared, name)
		if _, err := db.SetupSecondary(ctx, db.SecondaryOptions{DataDir: dataDir, BinDir: bin, RunAs: testenv.PostgresUser(),
			ListenAddresses: "127.0.0.1", Primary: db.Conn{Host: c.primary.Host, Port: c.primary.Port, User: "replica1",
				CAFile: ca, CertFile: cert, KeyFile: key}}); err != nil {
			return nil, fmt.Errorf("setup secondary %s: %w\n%s", name, err, c.primary.Log(20))
		}
		if name == "stuck" {
			f, err := os.OpenFile(filepath.Join(dataDir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return nil, err
			}
			_, err = fmt.Fprintf(f, "primary_conninfo = 'host=127.0.0.1 port=1 user=replica1'\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		}
		return testenv.StartPostgres(ctx, testenv.PostgresOptions{DataDir: dataDir})
	}
	if c.standby, err = standby("standby"); err != nil {
		return c, err
	}
	if c.stuck, err = standby("stuck"); err != nil {
		return c, err
	}
	// Wait until the standby streams (the doctor's check is what the tests then look at).
	conn := db.Conn{Host: c.standby.Host, Port: c.standby.Port, User: "postgres", Password: c.primary.Password, DBName: "postgres", SSLMode: "disable"}
	for {
		pc, err := conn.Connect(ctx)
		if err == nil {
			s, serr := db.StandbyStatus(ctx, pc)
			_ = pc.Close(ctx)
			if serr == nil && s.Streaming {
				return c, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nodeDBPassword is the serverconf password of the node's db.properties and of the primary.
const nodeDBPassword = "serverconf-pw"
