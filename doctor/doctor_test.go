package doctor

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/agent/verdict"
	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/settings"
	"github.com/xroad-lb/lbkit/testenv"
)

// healthPort serves a real lbagent health port on a free loopback port whose clock is
// offset from ours; it returns the port.
func healthPort(t *testing.T, offset time.Duration) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clock := skewedClock{clockwork.NewRealClock(), offset}
	store := verdict.NewStoreWithClock("secondary", []check.Spec{{Name: "Proxy", Severity: check.Critical}}, clock)
	start := clock.Now()
	store.SetResult(0, check.Result{Name: "Proxy", Severity: check.Critical, Status: check.StatusPass, Started: start, Duration: time.Millisecond, Runs: 1})
	srv := healthport.New(store, healthport.Options{Clock: clock})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return ln.Addr().(*net.TCPAddr).Port
}

// skewedClock is the real clock set offset ahead (Now is all the health port reads): another
// node's clock, out of step with ours.
type skewedClock struct {
	clockwork.Clock
	offset time.Duration
}

func (c skewedClock) Now() time.Time { return c.Clock.Now().Add(c.offset) }

// goodNodeAs is a node of role ("slave" or "master") as the guide wants it: testenv's node
// files plus node.ini type, a reachable health interface served by a real health port on
// loopback (which also stands in for the primary's lbagent: [sync] primary is 127.0.0.1),
// the TLS files owned by postgres, the sync's key and known_hosts (under the test's
// directory), and db.properties pointing at the package cluster's streaming standby.
func goodNodeAs(t *testing.T, role string) (*testenv.Node, Options, map[string]string) {
	t.Helper()
	pg, err := user.Lookup("postgres")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("user postgres: %v (CI=true: run scripts/install-deps.sh)", err)
		}
		t.Skipf("user postgres: %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir := t.TempDir()
	paths := map[string]string{
		"key": filepath.Join(dir, "id_ed25519"), "known_hosts": filepath.Join(dir, "known_hosts"),
		"pause": filepath.Join(dir, "sync-disabled"),
	}
	c := cluster(t)
	port := healthPort(t, 0)
	paths["health-port"] = strconv.Itoa(port)
	n := testenv.NewNode(t, testenv.NodeOptions{Role: role, HealthInterface: "0.0.0.0", HealthPort: port, DBPassword: nodeDBPassword,
		NodeINI: fmt.Sprintf("[sync]\nprimary = 127.0.0.1:22\nidentity = %s\nknown-hosts = %s\npause-file = %s\n",
			paths["key"], paths["known_hosts"], paths["pause"])})
	for _, p := range []string{paths["key"], paths["known_hosts"]} {
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tls := filepath.Join(n.XRoadDir, "postgresql")
	if err := os.MkdirAll(tls, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.crt", "server.crt", "server.key"} {
		p := filepath.Join(tls, name)
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatalf("chown %s to postgres: %v", p, err)
		}
		paths[name] = p
	}
	dbPort := c.standby.Port
	if role == "master" {
		dbPort = c.primary.Port
	}
	setDBPort(t, n, dbPort)
	free, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// The node's own ports (5588...) may be busy on a shared machine: one free port stands in.
	return n, Options{XRoadDir: n.XRoadDir, Ports: []Port{{free, "admin", []string{"lbagent"}}}}, paths
}

// setDBPort points db.properties' serverconf URL at 127.0.0.1:port.
func setDBPort(t *testing.T, n *testenv.Node, port int) {
	t.Helper()
	p := filepath.Join(n.XRoadDir, "db.properties")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`jdbc:postgresql://[^/]+/serverconf`).ReplaceAllString(string(b), fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/serverconf", port))
	if err := os.WriteFile(p, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

func report(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s %s %s\n", f.Severity, f.Chapter, f.Message)
	}
	return b.String()
}

func TestGoodNodeHasNoFindings(t *testing.T) {
	for _, tt := range []struct {
		role string
		want []string // lines of the live checks that must be there
	}{
		{"slave", []string{"ok 3.4 health check port 127.0.0.1:", "ok 6.2 serverconf standby streaming from", "ok 3.1 clock offset to the primary"}},
		{"master", []string{"ok 3.4 health check port 127.0.0.1:", "ok 4.3 ", "hostssl replication +slavenode samenet cert"}},
	} {
		t.Run(tt.role, func(t *testing.T) {
			_, o, _ := goodNodeAs(t, tt.role)
			fs := Check(o)
			if w := Worst(fs); w != OK {
				t.Errorf("worst %s on a correct node:\n%s", w, report(fs))
			}
			if len(fs) < 9 {
				t.Errorf("%d findings; want every check reported:\n%s", len(fs), report(fs))
			}
			for _, w := range tt.want {
				if !strings.Contains(report(fs), w) {
					t.Errorf("no %q in:\n%s", w, report(fs))
				}
			}
		})
	}
}

// TestEachBrokenSetting breaks one setting at a time: its chapter's line turns warn or FAIL
// and names what to fix.
func TestEachBrokenSetting(t *testing.T) {
	rewrite := func(t *testing.T, path, old, new string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s lacks %q", path, old)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	local := func(n *testenv.Node) string { return filepath.Join(n.XRoadDir, "conf.d", "local.ini") }
	tests := []struct {
		name    string
		breakIt func(t *testing.T, n *testenv.Node, p map[string]string)
		sev     Severity
		chapter string
		want    string
		role    string                            // default slave
		opts    func(*Options, map[string]string) // run after breakIt
	}{
		{"node type unset", func(t *testing.T, n *testenv.Node, _ map[string]string) {
			rewrite(t, filepath.Join(n.XRoadDir, "conf.d", "node.ini"), "type=slave", "type=")
		}, Warn, "3.3", "[node] type is not set", "", nil},
		{"health check off", func(t *testing.T, n *testenv.Node, p map[string]string) {
			rewrite(t, local(n), "health-check-port="+p["health-port"], "health-check-port=0")
		}, Fail, "3.4", "health-check-port is 0", "", nil},
		{"health check on loopback", func(t *testing.T, n *testenv.Node, _ map[string]string) {
			rewrite(t, local(n), "health-check-interface=0.0.0.0", "health-check-interface=127.0.0.1")
		}, Warn, "3.4", "cannot reach it", "", nil},
		{"pooled connections on", func(t *testing.T, n *testenv.Node, _ map[string]string) {
			rewrite(t, local(n), "server-support-clients-pooled-connections=false", "server-support-clients-pooled-connections=true")
		}, Fail, "3.2", "set it to false", "", nil},
		{"serverconf on 5432", func(t *testing.T, n *testenv.Node, _ map[string]string) {
			setDBPort(t, n, 5432)
		}, Fail, "3.3", "uses port 5432", "", nil},
		{"TLS key readable by others", func(t *testing.T, _ *testenv.Node, p map[string]string) {
			if err := os.Chmod(p["server.key"], 0o644); err != nil {
				t.Fatal(err)
			}
		}, Fail, "4.1", "not 0600", "", nil},
		{"TLS file owned by root", func(t *testing.T, _ *testenv.Node, p map[string]string) {
			if err := os.Chown(p["ca.crt"], 0, 0); err != nil {
				t.Fatal(err)
			}
		}, Fail, "4.1", "not postgres", "", nil},
		{"TLS file missing", func(t *testing.T, _ *testenv.Node, p map[string]string) {
			if err := os.Remove(p["server.crt"]); err != nil {
				t.Fatal(err)
			}
		}, Fail, "4.1", "no such file", "", nil},
		{"no SSH key", func(t *testing.T, _ *testenv.Node, p map[string]string) {
			if err := os.Remove(p["key"]); err != nil {
				t.Fatal(err)
			}
		}, Fail, "5.1", "no SSH key", "", nil},
		{"no known_hosts", func(t *testing.T, _ *testenv.Node, p map[string]string) {
			if err := os.Remove(p["known_hosts"]); err != nil {
				t.Fatal(err)
			}
		}, Fail, "5.1", "known_hosts", "", nil},
		{"sync paused", func(t *testing.T, _ *testenv.Node, p map[string]string) {
			if err := os.WriteFile(p["pause"], nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, Warn, "7.2.1", "configuration sync is paused", "", nil},
		{"health port answers nothing", func(t *testing.T, n *testenv.Node, p map[string]string) {
			free, err := testenv.FreePort("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			rewrite(t, local(n), "health-check-port="+p["health-port"], fmt.Sprintf("health-check-port=%d", free))
		}, Fail, "3.4", "nothing answers", "", func(o *Options, p map[string]string) {
			o.PrimaryAgent = "127.0.0.1:" + p["health-port"] // the primary's agent still answers
		}},
		{"replication not streaming", func(t *testing.T, n *testenv.Node, _ map[string]string) {
			setDBPort(t, n, cluster(t).stuck.Port)
		}, Fail, "6.2", "is not streaming from the primary", "", nil},
		{"serverconf not a standby", func(t *testing.T, n *testenv.Node, _ map[string]string) {
			setDBPort(t, n, cluster(t).primary.Port)
		}, Fail, "4.4", "is not a standby", "", nil},
		{"clock ahead of ours on the primary", func(t *testing.T, n *testenv.Node, p map[string]string) {
			rewrite(t, local(n), "health-check-port="+p["health-port"], fmt.Sprintf("health-check-port=%d", healthPort(t, 3*time.Second)))
		}, Fail, "3.1", "clock offset to the primary", "", nil},
		{"no replication rule in pg_hba.conf", func(t *testing.T, _ *testenv.Node, p map[string]string) {
			b, err := os.ReadFile(primaryHBA(t))
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(b), "hostssl\treplication\t+slavenode", "host\treplication\t+slavenode")
			if text == string(b) {
				t.Fatalf("no hostssl replication rule to break in:\n%s", b)
			}
			if err := os.WriteFile(p["hba"], []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}, Fail, "4.3", "no hostssl replication rule for +slavenode", "master", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role := tt.role
			if role == "" {
				role = "slave"
			}
			n, o, p := goodNodeAs(t, role)
			p["hba"] = filepath.Join(t.TempDir(), "pg_hba.conf")
			tt.breakIt(t, n, p)
			if _, err := os.Stat(p["hba"]); err == nil {
				o.HBAFile = p["hba"]
			}
			if tt.opts != nil {
				tt.opts(&o, p)
			}
			fs := Check(o)
			var hit []Finding
			for _, f := range fs {
				if f.Severity > OK {
					hit = append(hit, f)
				}
			}
			if len(hit) != 1 || hit[0].Severity != tt.sev || hit[0].Chapter != tt.chapter || !strings.Contains(hit[0].Message, tt.want) {
				t.Errorf("findings:\n%s\nwant exactly one %s %s line with %q", report(fs), tt.sev, tt.chapter, tt.want)
			}
			if Worst(fs) != tt.sev {
				t.Errorf("worst %s; want %s", Worst(fs), tt.sev)
			}
		})
	}
}

func TestNodePorts(t *testing.T) {
	n := testenv.NewNode(t, testenv.NodeOptions{HealthInterface: "0.0.0.0", HealthPort: 5588})
	s, err := settings.LoadLbagent(n.XRoadDir)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, p := range nodePorts(xroad.HealthCheck{Interface: "0.0.0.0", Port: 5588}, s, "127.0.0.1:5566") {
		got = append(got, p.Number)
	}
	if fmt.Sprint(got) != "[5500 5577 5588 5589 5566]" {
		t.Errorf("ports %v; want [5500 5577 5588 5589 5566]", got)
	}
}

// TestPortHolders: a port held by a program that is not its owner is a finding naming the
// program; held by an owner or free, it is fine.
func TestPortHolders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	me := strings.TrimSpace(string(comm))
	free, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	fs := portFindings("/proc", []Port{
		{port, "admin", []string{"lbagent"}},
		{port, "admin", []string{"lbagent", me}},
		{free, "admin", []string{"lbagent"}},
	})
	if f := fs[0]; f.Severity != Fail || !strings.Contains(f.Message, "held by "+me+", not lbagent") {
		t.Errorf("port held by the test: %+v; want FAIL naming %s", f, me)
	}
	if f := fs[1]; f.Severity != OK || !strings.Contains(f.Message, "held by "+me) {
		t.Errorf("port held by an owner: %+v; want ok", f)
	}
	if f := fs[2]; f.Severity != OK || !strings.Contains(f.Message, "free") {
		t.Errorf("free port: %+v; want ok, free", f)
	}
}

// primaryHBA is the cluster primary's pg_hba.conf, as db.SetupPrimary left it.
func primaryHBA(t *testing.T) string {
	return filepath.Join(cluster(t).primary.DataDir, "pg_hba.conf")
}

// TestClockSkippedWithoutPrimary: without the primary's address (no health check port to
// reach its agent on, no --primary-agent) the clock check is skipped, not a finding.
func TestClockSkippedWithoutPrimary(t *testing.T) {
	n := testenv.NewNode(t, testenv.NodeOptions{Role: "slave", HealthPort: -1})
	f := clockFinding(Options{XRoadDir: n.XRoadDir, Timeout: DefaultTimeout, Clock: clockwork.NewRealClock(), MaxClockOffset: time.Second}, xroad.HealthCheck{})
	if f.Severity != Skipped || !strings.Contains(f.Message, "skipped") {
		t.Errorf("%+v; want skipped", f)
	}
	if Worst([]Finding{f}) != OK {
		t.Errorf("a skipped check counts in the exit code")
	}
}
