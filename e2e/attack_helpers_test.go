package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/attack"
)

// balancer is the source address of the "balancer" in the attack tests: it is listed in
// [agent-check] balancers; the attackers come from other loopback addresses.
const balancer = "127.0.0.1"

// attackAgent is a real lbagent process started for one attack.
type attackAgent struct {
	node                     *testenv.Node
	health, admin, agentPort string
	logPath                  string
	cmd                      *exec.Cmd
	exited                   chan struct{}
}

type agentOpts struct {
	lbagent string // extra lines of lbagent.ini's [lbagent]
	nofile  int    // RLIMIT_NOFILE of the process (0: inherited)
	node    func(n *testenv.Node)
}

// startAttackAgent writes a node whose database is db and starts lbagent on it with the
// agent-check port on and 127.0.0.1 as the only balancer, then waits until it is healthy.
func startAttackAgent(t *testing.T, bin string, db *testenv.Postgres, o agentOpts, wantHealthy bool) *attackAgent {
	t.Helper()
	acPort, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ini := fmt.Sprintf("[lbagent]\nsuccess-ttl = 500ms\n%s\n[agent-check]\nlisten = 127.0.0.1:%d\nbalancers = %s\n",
		o.lbagent, acPort, balancer)
	node := testenv.NewNode(t, testenv.NodeOptions{Role: "master", DB: db, LBAgentINI: ini})
	if o.node != nil {
		o.node(node)
	}
	a := &attackAgent{node: node, health: node.HealthAddr, admin: net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		agentPort: net.JoinHostPort("127.0.0.1", strconv.Itoa(acPort)), logPath: filepath.Join(node.Root, "lbagent.log"),
		exited: make(chan struct{})}
	args := []string{bin, "run", "--xroad-dir", node.XRoadDir, "--ocsp-cache-dir", node.OCSPDir, "--admin-listen", a.admin}
	if o.nofile > 0 {
		prlimit := testenv.Require(t, "prlimit")
		args = append([]string{prlimit, fmt.Sprintf("--nofile=%d:%d", o.nofile, o.nofile), "--"}, args...)
	}
	logf, err := os.Create(a.logPath)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(args[0], args[1:]...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); logf.Close(); close(a.exited) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.exited
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		p := attack.HTTPProbe(ctx, balancer, a.health, "/")
		if p.Err == nil && (!wantHealthy || p.Code == 200) {
			return a
		}
		select {
		case <-a.exited:
			t.Fatalf("lbagent exited at start:\n%s", a.logTail(20))
		case <-ctx.Done():
			t.Fatalf("lbagent not healthy: last probe %d %q %v\n%s", p.Code, p.Body, p.Err, a.logTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// alive fails the test when the process has exited.
func (a *attackAgent) alive(t *testing.T) {
	t.Helper()
	select {
	case <-a.exited:
		t.Fatalf("lbagent exited under attack:\n%s", a.logTail(30))
	default:
	}
}

func (a *attackAgent) pid() int { return a.cmd.Process.Pid }

// fds is the number of descriptors the process has open.
func (a *attackAgent) fds() int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", a.pid()))
	return len(ents)
}

// rssMB is the resident memory of the process in MiB.
func (a *attackAgent) rssMB(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func (a *attackAgent) logLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (a *attackAgent) logTail(n int) string {
	b, _ := os.ReadFile(a.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// metric reads one sample of /metrics (the first line starting with name).
func (a *attackAgent) metric(t *testing.T, name string) float64 {
	t.Helper()
	p := attack.HTTPProbe(context.Background(), balancer, a.health, "/metrics")
	if p.Err != nil || p.Code != 200 {
		t.Fatalf("/metrics: %d %v", p.Code, p.Err)
	}
	sc := bufio.NewScanner(strings.NewReader(p.Body))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			f := strings.Fields(l)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s in /metrics", name)
	return 0
}

// adminStatus reads the full /status of the admin port.
func (a *attackAgent) adminStatus(t *testing.T) (string, map[string]any) {
	t.Helper()
	p := attack.HTTPProbe(context.Background(), "127.0.0.1", a.admin, "/status")
	if p.Err != nil {
		t.Fatalf("admin /status: %v", p.Err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(p.Body), &doc); err != nil {
		t.Fatalf("admin /status is not JSON: %v\n%s", err, p.Body)
	}
	return p.Body, doc
}

// checkOf returns check name's entry of a /status document.
func checkOf(doc map[string]any, name string) map[string]any {
	checks, _ := doc["checks"].(map[string]any)
	list, _ := checks[name].([]any)
	if len(list) == 0 {
		return nil
	}
	m, _ := list[0].(map[string]any)
	return m
}

// healthyAfter fails the test unless every port still answers correctly.
func (a *attackAgent) healthyAfter(t *testing.T) {
	t.Helper()
	a.alive(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var p attack.Probe
	for ctx.Err() == nil { // the attack's connections may still be closing
		if p = attack.HTTPProbe(ctx, balancer, a.health, "/"); p.Err == nil && p.Code == 200 && p.Body == "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.Err != nil || p.Code != 200 || p.Body != "" {
		t.Fatalf("health port after the attack: %d %q %v\n%s", p.Code, p.Body, p.Err, a.logTail(20))
	}
	if p := attack.AgentProbe(ctx, balancer, a.agentPort); p.Err != nil || p.Body != "up\n" {
		t.Fatalf("agent-check port after the attack: %q %v", p.Body, p.Err)
	}
	if p := attack.HTTPProbe(ctx, "127.0.0.1", a.admin, "/maintenance?targetState=false"); p.Err != nil || p.Code != 200 ||
		p.Body != "Maintenance mode set: false => false\n" {
		t.Fatalf("admin port after the attack: %d %q %v", p.Code, p.Body, p.Err)
	}
}
