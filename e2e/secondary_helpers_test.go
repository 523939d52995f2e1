package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/db/certs"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/sync/confsync"
	"github.com/xroad-lb/lbkit/testenv"
)

// agentProc is one `lbagent run` process on a generated X-Road node.
type agentProc struct {
	node   *testenv.Node
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
	client *http.Client
	admin  string // the admin port, whose /status has every detail
}

// startAgent runs `lbagent run` on node (admin port on a free 127.0.0.1 port) and waits until
// its health port answers /status. The process is stopped at cleanup.
func startAgent(t *testing.T, bin string, node *testenv.Node) *agentProc {
	t.Helper()
	admin, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProc{node: node, log: filepath.Join(node.Root, "lbagent.log"), admin: net.JoinHostPort("127.0.0.1", strconv.Itoa(admin)),
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}}
	logf, err := os.OpenFile(a.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(bin, "run", "--xroad-dir", node.XRoadDir, "--ocsp-cache-dir", node.OCSPDir,
		"--admin-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(admin)))
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	a.exited = make(chan struct{})
	go func() { _ = a.cmd.Wait(); logf.Close(); close(a.exited) }()
	t.Cleanup(a.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-a.exited:
			t.Fatalf("lbagent exited at start:\n%s", a.tail(30))
		default:
		}
		if _, err := a.status(); err == nil {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("lbagent /status not answering on %s after 20s:\n%s", node.HealthAddr, a.tail(30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits (SIGKILL to the process group after 10 s).
func (a *agentProc) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	pid := a.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-a.exited
	}
}

func (a *agentProc) tail(n int) string {
	b, _ := os.ReadFile(a.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// secondaryStatus is the part of /status these tests read: the checks and the secondary's
// two components, decoded into the packages' own status types.
type secondaryStatus struct {
	Status     string                              `json:"status"`
	State      string                              `json:"state"`
	Role       string                              `json:"role"`
	Checks     map[string][]healthport.CheckStatus `json:"checks"`
	Components struct {
		Replication *db.WatchStatus  `json:"replication"`
		Sync        *confsync.Status `json:"sync"`
	} `json:"components"`
}

// check returns the named check's entry (zero when absent).
func (s *secondaryStatus) check(name string) healthport.CheckStatus {
	if c := s.Checks[name]; len(c) == 1 {
		return c[0]
	}
	return healthport.CheckStatus{}
}

func (a *agentProc) get(path string) (int, string, error) { return a.getFrom(a.node.HealthAddr, path) }

func (a *agentProc) getFrom(addr, path string) (int, string, error) {
	resp, err := a.client.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// status reads the admin port's /status (the health port's leaves out paths and peers).
func (a *agentProc) status() (*secondaryStatus, error) {
	_, body, err := a.getFrom(a.admin, healthport.PathStatus)
	if err != nil {
		return nil, err
	}
	var s secondaryStatus
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return nil, fmt.Errorf("/status: %w: %s", err, body)
	}
	return &s, nil
}

// health is the X-Road health port's plain answer (any path but the reserved ones).
func (a *agentProc) health() (int, string, error) { return a.get("/") }

// metric reads one sample of /metrics, e.g. `lbagent_sync_passes_total{result="paused"}`.
func (a *agentProc) metric(sample string) (float64, error) {
	_, body, err := a.get(healthport.PathMetrics)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no sample %s in /metrics", sample)
}

// waitStatus polls /status every 50ms until ok accepts it (nil error) or timeout passes.
func (a *agentProc) waitStatus(t *testing.T, what string, timeout time.Duration, ok func(*secondaryStatus) error) *secondaryStatus {
	t.Helper()
	var last error
	deadline := time.Now().Add(timeout)
	for {
		s, err := a.status()
		if err == nil {
			if err = ok(s); err == nil {
				return s
			}
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %v\nlbagent log:\n%s", what, timeout, last, a.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHealth polls the plain health answer until ok accepts it or timeout passes.
func (a *agentProc) waitHealth(t *testing.T, what string, timeout time.Duration, ok func(code int, body string) error) {
	t.Helper()
	var last error
	deadline := time.Now().Add(timeout)
	for {
		code, body, err := a.health()
		if err == nil {
			if err = ok(code, body); err == nil {
				return
			}
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %v\nlbagent log:\n%s", what, timeout, last, a.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers200 accepts X-Road's healthy answer: 200 with an empty body.
func answers200(code int, body string) error {
	if code != 200 || body != "" {
		return fmt.Errorf("health port: %d %q; want 200 with an empty body", code, body)
	}
	return nil
}

// checkIs accepts a check with the given status and exact output.
func checkIs(st *secondaryStatus, name, status, output string) error {
	c := st.check(name)
	if c.Status != status || c.Output != output {
		return fmt.Errorf("check %q: %s %q; want %s %q", name, c.Status, c.Output, status, output)
	}
	return nil
}

// replicaPair is a serverconf primary and a hot standby built with the db package as
// `lbagent db setup primary|secondary` does, TLS client certificates included.
type replicaPair struct {
	primary, standby *testenv.Postgres
}

// newReplicaPair starts a primary, sets it up (serverconf user with password, pg_monitor for
// it), lets prepare create what must exist before the base backup (the serverconf database),
// then makes the standby with pg_basebackup and starts it.
func newReplicaPair(t *testing.T, serverconfPassword string, prepare func(primary *testenv.Postgres)) *replicaPair {
	t.Helper()
	bin, err := testenv.PostgresBinDir()
	if err != nil {
		testenv.Require(t, "initdb", "/usr/lib/postgresql/15/bin")
	}
	testenv.Require(t, "pg_basebackup", bin)
	ctx := context.Background()
	shared := testenv.SharedDir(t)
	certDir := filepath.Join(shared, "certs")
	uid, gid, chown, err := testenv.PostgresOwner()
	if err != nil {
		t.Fatal(err)
	}
	opts := certs.Options{Chown: chown, UID: uid, GID: gid}
	if _, _, err := certs.WriteCA(certDir, opts); err != nil {
		t.Fatal(err)
	}
	files := func(name string) (ca, cert, key string) {
		if _, err := certs.WriteNode(certDir, filepath.Join(certDir, name), name, opts); err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(certDir, name)
		return filepath.Join(d, certs.CACertFile), filepath.Join(d, certs.NodeCertFile), filepath.Join(d, certs.NodeKeyFile)
	}

	primary := testenv.NewPostgres(t, testenv.PostgresOptions{})
	super := db.Conn{Host: primary.Host, Port: primary.Port, User: "postgres", Password: primary.Password,
		DBName: "postgres", SSLMode: "disable"}
	ca, cert, key := files("primary")
	if _, err := db.SetupPrimary(ctx, super, db.PrimaryOptions{CAFile: ca, CertFile: cert, KeyFile: key,
		ListenAddresses: primary.Host, Replicas: []string{"replica1"}, ServerconfPassword: serverconfPassword}); err != nil {
		t.Fatalf("setup primary: %v\n%s", err, primary.Log(20))
	}
	// The reload that turns TLS on is asynchronous: pg_basebackup needs it.
	tlsConn := super
	tlsConn.SSLMode, tlsConn.CAFile = "verify-ca", ca
	poll(t, "TLS on the primary", 10*time.Second, func() error {
		c, err := tlsConn.Connect(ctx)
		if err == nil {
			_ = c.Close(ctx)
		}
		return err
	})
	prepare(primary)

	dataDir := filepath.Join(shared, "standby")
	ca, cert, key = files("replica1")
	if _, err := db.SetupSecondary(ctx, db.SecondaryOptions{DataDir: dataDir, BinDir: bin,
		RunAs: testenv.PostgresUser(), ListenAddresses: "127.0.0.1",
		Primary: db.Conn{Host: primary.Host, Port: primary.Port, User: "replica1", CAFile: ca, CertFile: cert, KeyFile: key},
	}); err != nil {
		t.Fatalf("setup secondary: %v\n%s", err, primary.Log(20))
	}
	standby := testenv.NewPostgres(t, testenv.PostgresOptions{DataDir: dataDir})
	return &replicaPair{primary: primary, standby: standby}
}

// superConn is a superuser connection to p (no TLS).
func superConn(p *testenv.Postgres) db.Conn {
	return db.Conn{Host: p.Host, Port: p.Port, User: "postgres", Password: p.Password, DBName: "postgres", SSLMode: "disable"}
}

var serverconfURL = regexp.MustCompile(`(?m)^(serverconf\.hibernate\.connection\.url = jdbc:postgresql://)[^/]+(/serverconf)$`)

// pointServerConfAt rewrites the node's db.properties so serverconf is read from p (on a
// secondary: its local standby).
func pointServerConfAt(t *testing.T, node *testenv.Node, p *testenv.Postgres) {
	t.Helper()
	path := filepath.Join(node.XRoadDir, "db.properties")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !serverconfURL.Match(b) {
		t.Fatalf("%s has no serverconf URL line:\n%s", path, b)
	}
	out := serverconfURL.ReplaceAll(b, []byte("${1}"+p.Addr()+"${2}"))
	if err := os.WriteFile(path, out, 0o640); err != nil {
		t.Fatal(err)
	}
}

// poll calls f every 50ms until it returns nil or timeout passes.
func poll(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adapterStatus runs `lbadapter status` against a cluster file listing only node (as ss2,
// a secondary) and a runtime API socket that does not exist: the agent columns are read,
// the balancer's are "?" and the exit code is 3 (balancer unreachable).
func adapterStatus(t *testing.T, bin string, node *testenv.Node, args ...string) result {
	t.Helper()
	host, port, err := net.SplitHostPort(node.HealthAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ini := fmt.Sprintf("[balancer]\ntype = haproxy\nruntime-api = %s\nbackend = xroad\n\n[node \"ss2\"]\naddress = %s\nrole = secondary\nhealth-port = %s\n",
		filepath.Join(dir, "no-haproxy.sock"), host, port)
	path := filepath.Join(dir, "cluster.ini")
	if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := runLBAdapter(ctx, bin, append([]string{"--config", path, "status"}, args...)...)
	if r.code != 3 {
		t.Fatalf("lbadapter status %v: exit %d; want 3 (no HAProxy)\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// adapterRow is `lbadapter status -o json`'s only row.
func adapterRow(t *testing.T, bin string, node *testenv.Node) lbadapters.NodeStatus {
	t.Helper()
	r := adapterStatus(t, bin, node, "-o", "json")
	var rep lbadapters.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Nodes) != 1 || rep.Nodes[0].Agent == nil {
		t.Fatalf("lbadapter status -o json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	return rep.Nodes[0]
}
