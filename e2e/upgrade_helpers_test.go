package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/db/certs"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/testenv"
)

// upgradeCluster is a 3-node cluster as an upgrade finds it: lbagents on 127.0.0.2-4 behind
// a real HAProxy and a real nginx, a real sshd on each node's address, the serverconf
// database on a PostgreSQL primary with one streaming standby per secondary (each
// secondary's db.properties points at its own standby), and the secondaries' lbagents running
// the config sync from the primary's sshd. Each lbagent runs under a restart loop (as under
// systemd's Restart=always) and reads its X-Road version from a file.
type upgradeCluster struct {
	*testenv.Cluster
	base       string // nodes' upgrade files: base/<ip>/{xroad-version,lbagent.pid,fail}
	adapter    string
	standbys   map[string]*testenv.Postgres
	primaryDB  *testenv.Postgres
	syncSource string
	syncTarget map[string]string
	command    string // base/upgrade.sh: the "upgrade command" of these tests
	loops      []*exec.Cmd
}

// nodeDir is where a node's upgrade files live, by address (the upgrade script finds its
// node by the address it was reached at, $SSH_CONNECTION).
func (u *upgradeCluster) nodeDir(n *testenv.ClusterNode) string { return filepath.Join(u.base, n.IP) }

func newUpgradeCluster(t *testing.T) *upgradeCluster {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	bin, err := testenv.BuildLBAgent(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	u := &upgradeCluster{adapter: buildLBAdapter(t, dir), base: testenv.SharedDir(t), standbys: map[string]*testenv.Postgres{},
		syncTarget: map[string]string{}}

	// The serverconf primary, set up for replication to ss2 and ss3 (TLS, cert users).
	pgBin, err := testenv.PostgresBinDir()
	if err != nil {
		testenv.Require(t, "initdb", "/usr/lib/postgresql/15/bin")
	}
	testenv.Require(t, "pg_basebackup", pgBin)
	shared := testenv.SharedDir(t)
	certDir := filepath.Join(shared, "certs")
	uid, gid, chown, err := testenv.PostgresOwner()
	if err != nil {
		t.Fatal(err)
	}
	copts := certs.Options{Chown: chown, UID: uid, GID: gid}
	if _, _, err := certs.WriteCA(certDir, copts); err != nil {
		t.Fatal(err)
	}
	files := func(name string) (ca, cert, key string) {
		if _, err := certs.WriteNode(certDir, filepath.Join(certDir, name), name, copts); err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(certDir, name)
		return filepath.Join(d, certs.CACertFile), filepath.Join(d, certs.NodeCertFile), filepath.Join(d, certs.NodeKeyFile)
	}
	primary := testenv.NewPostgres(t, testenv.PostgresOptions{})
	u.primaryDB = primary
	super := superConn(primary)
	ca, cert, key := files("primary")
	if _, err := db.SetupPrimary(ctx, super, db.PrimaryOptions{CAFile: ca, CertFile: cert, KeyFile: key,
		ListenAddresses: primary.Host, Replicas: []string{"ss2", "ss3"}, ServerconfPassword: "serverconf-pw"}); err != nil {
		t.Fatalf("setup primary: %v\n%s", err, primary.Log(20))
	}
	tlsConn := super
	tlsConn.SSLMode, tlsConn.CAFile = "verify-ca", ca
	poll(t, "TLS on the primary", 10*time.Second, func() error {
		c, err := tlsConn.Connect(ctx)
		if err == nil {
			_ = c.Close(ctx)
		}
		return err
	})

	u.Cluster = testenv.NewCluster(t, testenv.ClusterOptions{LBAgent: bin, DB: primary, Nginx: true,
		LBAgentINI: "[replication]\ninterval = 200ms\n"})

	// A real sshd on every node's address; one client key and one known_hosts for all.
	var sshds []*testenv.SSHD
	var known strings.Builder
	for _, n := range u.Nodes {
		s := testenv.NewSSHD(t, testenv.SSHDOptions{Host: n.IP})
		sshds = append(sshds, s)
		b, err := os.ReadFile(s.KnownHostsPath)
		if err != nil {
			t.Fatal(err)
		}
		known.Write(b)
	}
	clientPub, err := os.ReadFile(sshds[0].ClientKeyPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sshds[1:] {
		f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write(clientPub)
		f.Close()
	}
	knownHosts := filepath.Join(u.base, "known_hosts")
	identity := sshds[0].ClientKeyPath
	if err := os.WriteFile(knownHosts, []byte(known.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// The config sync's source on the primary.
	u.syncSource = filepath.Join(u.base, "primary-etc")
	writeTree(t, u.syncSource, map[string]string{"signer/keyconf.xml": "keyconf v1\n", "conf.d/local.ini": "[proxy]\n"})

	clusterINI, err := os.ReadFile(u.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(clusterINI)
	for i, n := range u.Nodes {
		nd := u.nodeDir(n)
		if err := os.MkdirAll(nd, 0o755); err != nil {
			t.Fatal(err)
		}
		writeTree(t, nd, map[string]string{"xroad-version": "7.4.0-1\n"})
		confd := filepath.Join(n.XRoad.XRoadDir, "conf.d")
		ini, err := os.ReadFile(filepath.Join(confd, "lbagent.ini"))
		if err != nil {
			t.Fatal(err)
		}
		lbagentINI := strings.Replace(string(ini), "[lbagent]\n", "[lbagent]\nxroad-version-file = "+filepath.Join(nd, "xroad-version")+"\n", 1)
		env := ""
		if n.Role == "secondary" {
			// Its own standby, made from the primary with pg_basebackup.
			dataDir := filepath.Join(shared, "standby-"+n.Name)
			ca, cert, key := files(n.Name)
			if _, err := db.SetupSecondary(ctx, db.SecondaryOptions{DataDir: dataDir, BinDir: pgBin,
				RunAs: testenv.PostgresUser(), ListenAddresses: "127.0.0.1",
				Primary: db.Conn{Host: primary.Host, Port: primary.Port, User: n.Name, CAFile: ca, CertFile: cert, KeyFile: key},
			}); err != nil {
				t.Fatalf("setup secondary %s: %v\n%s", n.Name, err, primary.Log(20))
			}
			sb := testenv.NewPostgres(t, testenv.PostgresOptions{DataDir: dataDir})
			u.standbys[n.Name] = sb
			pointServerConfAt(t, n.XRoad, sb)
			u.syncTarget[n.Name] = filepath.Join(u.base, n.Name+"-sync")
			lbagentINI += fmt.Sprintf(`
[sync]
primary = %s
user = root
identity = %s
known-hosts = %s
source = %s/
target = %s/
interval = 200ms
pause-file = %s
log-file = %s
state-dir = %s
serve-command =
`, sshds[0].Addr, identity, knownHosts, u.syncSource, u.syncTarget[n.Name], filepath.Join(nd, "sync-disabled"),
				filepath.Join(nd, "sync.log"), filepath.Join(nd, "sync-state"))
			env = fmt.Sprintf("PGHOST=127.0.0.1 PGPORT=%d PGUSER=postgres PGPASSWORD=%s PGSSLMODE=disable ", sb.Port, sb.Password)
		}
		if err := os.WriteFile(filepath.Join(confd, "lbagent.ini"), []byte(lbagentINI), 0o640); err != nil {
			t.Fatal(err)
		}
		// lbagent as run over SSH on this node: its X-Road directory, and for the db
		// commands its standby's superuser (as "sudo -u postgres" would be).
		wrapper := filepath.Join(nd, "lbagent")
		script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = --version ] && exec %s --version\nexport %s\nexec %s \"$@\" --xroad-dir %s\n",
			bin, strings.TrimSpace(env+"LBAGENT_NODE="+n.Name), bin, n.XRoad.XRoadDir)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		cfg = strings.Replace(cfg, fmt.Sprintf("[node %q]\n", n.Name),
			fmt.Sprintf("[node %q]\nssh = root@%s\nlbagent = %s\ndb-lbagent = %s\n", n.Name, sshds[i].Addr, wrapper, wrapper), 1)

		// The agent, restarted whenever it exits (the upgrade command kills it).
		if err := n.StopAgent(); err != nil {
			t.Fatal(err)
		}
		loop := fmt.Sprintf(`while [ ! -e %[1]s/stop ]; do
  %[2]s run --xroad-dir %[3]s --ocsp-cache-dir %[4]s --admin-listen %[5]s >> %[1]s/lbagent.log 2>&1 &
  echo $! > %[1]s/lbagent.pid
  wait $!
  sleep 0.05
done`, nd, bin, n.XRoad.XRoadDir, n.XRoad.OCSPDir, n.AdminAddr)
		cmd := exec.Command("/bin/sh", "-c", loop)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		u.loops = append(u.loops, cmd)
	}
	t.Cleanup(u.stopLoops)
	cfg += fmt.Sprintf("\n[ssh]\nuser = root\nidentity = %s\nknown-hosts = %s\n", identity, knownHosts)
	if err := os.WriteFile(u.ConfigPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// The upgrade command: the node (found by the address it was reached at) gets the version
	// in base/next-version, then its lbagent is restarted; base/<ip>/fail makes it fail as
	// a broken package would.
	u.command = filepath.Join(u.base, "upgrade.sh")
	script := fmt.Sprintf(`#!/bin/sh
set -e
ip=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
d=%[1]s/$ip
if [ -e "$d/fail" ]; then
  echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2
  exit 100
fi
new=$(cat %[1]s/next-version)
echo "Unpacking xroad-proxy ($new) over ($(cat $d/xroad-version)) ..."
echo "$new" > "$d/xroad-version.tmp" && mv "$d/xroad-version.tmp" "$d/xroad-version"
kill $(cat "$d/lbagent.pid")
echo "Setting up xroad-proxy ($new) ..."
`, u.base)
	if err := os.WriteFile(u.command, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	u.waitSteady(t, "7.4.0-1")
	return u
}

func (u *upgradeCluster) stopLoops() {
	for _, n := range u.Nodes {
		_ = os.WriteFile(filepath.Join(u.nodeDir(n), "stop"), nil, 0o644)
	}
	for _, c := range u.loops {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	u.loops = nil
}

// status is the node's /status as lbadapter reads it.
func (u *upgradeCluster) status(n *testenv.ClusterNode) (lbadapters.AgentStatus, error) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get(n.StatusURL())
	if err != nil {
		return lbadapters.AgentStatus{}, err
	}
	defer resp.Body.Close()
	var s lbadapters.AgentStatus
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// steady says why the cluster is not (yet) as an upgrade wants to find and leave it: every
// node UP on HAProxy, healthy, on version; replication streaming, not paused and caught up;
// sync not paused with a success.
func (u *upgradeCluster) steady(version string) error {
	ctx := context.Background()
	for _, n := range u.Nodes {
		st, _, err := u.ServerStatus(ctx, n.Name)
		if err != nil || st != "UP" {
			return fmt.Errorf("%s: HAProxy %q %v", n.Name, st, err)
		}
		s, err := u.status(n)
		if err != nil {
			return fmt.Errorf("%s: %v", n.Name, err)
		}
		if s.State != "healthy" || s.Components.Version == nil || s.Components.Version.XRoad != version {
			return fmt.Errorf("%s: %s (%s), version %+v; want healthy on %s", n.Name, s.State, s.Output, s.Components.Version, version)
		}
		if n.Role != "secondary" {
			continue
		}
		if r := s.Components.Replication; r == nil || !r.Up || !r.Streaming || r.Paused || r.LagBytes != 0 {
			return fmt.Errorf("%s: replication %+v; want streaming, not paused, caught up", n.Name, r)
		}
		if y := s.Components.Sync; y == nil || y.Paused || y.AgeSeconds == nil || *y.AgeSeconds > 5 {
			return fmt.Errorf("%s: sync %+v; want running with a recent success", n.Name, y)
		}
	}
	return nil
}

func (u *upgradeCluster) waitSteady(t *testing.T, version string) {
	t.Helper()
	poll(t, "cluster steady on "+version, 60*time.Second, func() error { return u.steady(version) })
}

// setNext sets the version the upgrade command installs.
func (u *upgradeCluster) setNext(t *testing.T, v string) {
	t.Helper()
	writeTree(t, u.base, map[string]string{"next-version": v + "\n"})
}

// upgradeArgs is lbadapter's arguments for an upgrade of the cluster with extra args.
func (u *upgradeCluster) upgradeArgs(state string, args ...string) []string {
	return append([]string{"--config", u.ConfigPath, "upgrade", "--state", state, "--poll", "100ms"}, args...)
}

// runAdapter runs lbadapter (10 min bound: a whole upgrade on a loaded machine).
func (u *upgradeCluster) runAdapter(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return runLBAdapter(ctx, u.adapter, args...)
}

// version is the node's reported X-Road version ("" on error).
func (u *upgradeCluster) version(n *testenv.ClusterNode) string {
	s, err := u.status(n)
	if err != nil || s.Components.Version == nil {
		return ""
	}
	return s.Components.Version.XRoad
}

func itoa(i int) string { return strconv.Itoa(i) }

var _ = net.JoinHostPort
