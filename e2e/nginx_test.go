package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
	"github.com/xroad-lb/lbkit/testenv"
)

// TestNginxStream runs a 3-node cluster (lbagents, message stand-ins on one port) behind a
// real HAProxy and a real nginx stream upstream (worker_processes 2) whose servers file
// lbadapter keeps: [balancer] (HAProxy) and [balancer "edge"] (nginx) in one cluster.ini.
func TestNginxStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, HAProxy, nginx and three lbagents")
	}
	testenv.Require(t, "nginx")
	agentBin, lbadapter := buildBoth(t)
	c := testenv.NewCluster(t, testenv.ClusterOptions{LBAgent: agentBin, Nginx: true})

	t.Run("status", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rep := nginxStatus(t, ctx, lbadapter, c)
		for _, row := range rep.Nodes {
			if len(row.Balancers) != 2 || row.Balancers[1].Name != "edge" || row.Balancers[1].State == nil ||
				row.Balancers[1].State.Status != "UP" || row.Balancers[1].State.Sessions != 0 {
				t.Errorf("%s: got %+v; want [edge] UP with 0 sessions", row.Node.Name, row.Balancers)
			}
		}
	})

	t.Run("two balancers drain together and wait for the held connections", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		n := c.Node("ss2")
		viaHAProxy := dialTo(t, ctx, c, n)
		viaNginx := dialVia(t, c.NginxFrontend, n)
		workersBefore := nginxWorkers(t, c)
		d := startLBAdapter(t, ctx, lbadapter, "--config", c.ConfigPath, "drain", "ss2", "--timeout", "30s", "--poll", "50ms")
		waitLine(t, ctx, c, "ss2", func(s *nginx.Server) bool { return s.Operator && !s.Agent })
		if err := c.WaitServer(ctx, "ss2", statusPrefix("DRAIN")); err != nil {
			t.Fatal(err)
		}
		// The reload replaced the workers; the held connection lives on in an old one.
		d.waitStderr(t, ctx, "drain ss2 [edge]: DRAIN (operator), 1 old worker(s) finishing (worker_shutdown_timeout 5m0s will cut them), 1 session left")
		if w := nginxWorkers(t, c); w == workersBefore {
			t.Errorf("nginx workers %v not replaced by the drain's reload", w)
		}
		if err := viaNginx.echo("still flowing after the reload"); err != nil {
			t.Errorf("held nginx connection: %v", err)
		}
		if err := viaHAProxy.echo("still flowing"); err != nil {
			t.Errorf("held HAProxy connection: %v", err)
		}
		// No new connection reaches the drained node.
		accepted := n.Msg.Accepted()
		for i := 0; i < 12; i++ {
			cn := dial(t, c.NginxFrontend)
			if err := cn.echo("new"); err != nil {
				t.Fatal(err)
			}
			cn.Close()
		}
		if got := n.Msg.Accepted(); got != accepted {
			t.Errorf("%d new connections reached the drained ss2", got-accepted)
		}
		if d.exited() {
			t.Fatalf("drain returned while connections were open:\n%s", d.output())
		}
		viaNginx.Close()
		d.waitStderr(t, ctx, "drain ss2 [edge]: DRAIN (operator), 0 sessions left")
		viaHAProxy.Close()
		if code := d.wait(t, ctx); code != 0 {
			t.Fatalf("drain exit %d:\n%s", code, d.output())
		}
		for _, want := range []string{"ss2 [balancer]: drained (DRAIN", "ss2 [edge]: drained (DRAIN (operator), 0 sessions left)"} {
			if !strings.Contains(d.stdout.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, d.output())
			}
		}
		rep := nginxStatus(t, ctx, lbadapter, c)
		if s := rep.Nodes[1].Balancers[1].State; s == nil || s.Status != "DRAIN (operator)" {
			t.Errorf("status [edge] ss2: %+v; want DRAIN (operator)", s)
		}
		r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "enable", "ss2", "--timeout", "20s", "--poll", "50ms")
		if r.code != 0 || !strings.Contains(r.stdout, "ss2 [edge]: enabled (UP") {
			t.Fatalf("enable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		waitLine(t, ctx, c, "ss2", func(s *nginx.Server) bool { return !s.Down() })
		dialVia(t, c.NginxFrontend, n).Close()
	})

	t.Run("a change nginx -t refuses is rolled back and nginx keeps serving", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		orig, err := os.ReadFile(c.ServersFile)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = os.WriteFile(c.ServersFile, orig, 0o644) }()
		// Someone's hand edit that nginx would refuse, not reloaded yet.
		broken := append(append([]byte{}, orig...), "server 127.0.0.9:5500 max_fails=many;\n"...)
		if err := os.WriteFile(c.ServersFile, broken, 0o644); err != nil {
			t.Fatal(err)
		}
		workers := nginxWorkers(t, c)
		r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "drain", "ss3", "--no-wait")
		if r.code != 3 || !strings.Contains(r.stderr, `lbadapter: drain ss3 [edge]: nginx -t refused the configuration: nginx: [emerg] invalid parameter "max_fails=many"`) ||
			!strings.Contains(r.stderr, "restored, nginx not reloaded") {
			t.Errorf("drain with a refused config: exit %d\n%s", r.code, r.stderr)
		}
		if got, _ := os.ReadFile(c.ServersFile); !bytes.Equal(got, broken) {
			t.Errorf("servers file not restored:\n%s", got)
		}
		if w := nginxWorkers(t, c); w != workers {
			t.Errorf("nginx reloaded (workers %s, before %s)", w, workers)
		}
		for _, n := range c.Nodes {
			cn := dialVia(t, c.NginxFrontend, n)
			if err := cn.echo("served"); err != nil {
				t.Errorf("through nginx to %s: %v", n.Name, err)
			}
			cn.Close()
		}
		// HAProxy is drained all the same; put it back.
		if err := c.WaitServer(ctx, "ss3", statusPrefix("DRAIN")); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(c.ServersFile, orig, 0o644); err != nil {
			t.Fatal(err)
		}
		if r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "enable", "ss3", "--timeout", "20s", "--poll", "50ms"); r.code != 0 {
			t.Fatalf("enable ss3: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("watch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const interval, fall = 200 * time.Millisecond, 2
		w := startLBAdapter(t, ctx, lbadapter, "--config", c.ConfigPath, "watch", "--interval", interval.String(),
			"--fall", "2", "--rise", "2", "--source", "127.0.0.250") // HAProxy's agent-check polls from 127.0.0.1
		w.waitStderr(t, ctx, "watching")

		t.Run("lbagent maintenance drains its node", func(t *testing.T) {
			n := c.Node("ss3")
			if err := n.SetMaintenance(ctx, true); err != nil {
				t.Fatal(err)
			}
			reloads := strings.Count(w.stderr.String(), "nginx reloaded")
			waitLine(t, ctx, c, "ss3", func(s *nginx.Server) bool { return s.Agent && s.Reason == "drain" })
			w.waitStderr(t, ctx, "ss3: down (agent: drain)")
			w.waitCount(t, ctx, "nginx reloaded", reloads+1)
			accepted := n.Msg.Accepted()
			for i := 0; i < 9; i++ {
				cn := dial(t, c.NginxFrontend)
				if err := cn.echo("x"); err != nil {
					t.Fatal(err)
				}
				cn.Close()
			}
			if got := n.Msg.Accepted(); got != accepted {
				t.Errorf("%d new connections reached ss3 in maintenance", got-accepted)
			}
			rep := nginxStatus(t, ctx, lbadapter, c)
			if s := rep.Nodes[2].Balancers[1].State; s == nil || s.Status != "DOWN (agent)" || s.Description != "agent: drain" {
				t.Errorf("status [edge] ss3: %+v; want DOWN (agent), agent: drain", s)
			}
			if err := n.SetMaintenance(ctx, false); err != nil {
				t.Fatal(err)
			}
			waitLine(t, ctx, c, "ss3", func(s *nginx.Server) bool { return !s.Down() })
			w.waitStderr(t, ctx, "ss3: up (agent: up ready)")
			// HAProxy heard its own "ready" from the agent-check port.
			if err := c.WaitServer(ctx, "ss3", statusIs("UP")); err != nil {
				t.Error(err)
			}
		})

		t.Run("an operator drain survives the watcher", func(t *testing.T) {
			n := c.Node("ss2")
			if r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "drain", "ss2", "--no-wait"); r.code != 0 {
				t.Fatalf("drain --no-wait: exit %d\n%s", r.code, r.stderr)
			}
			reloads := strings.Count(w.stderr.String(), "nginx reloaded")
			// The agent goes into maintenance and back: the watcher sets and lifts its own
			// down, the operator's stays.
			if err := n.SetMaintenance(ctx, true); err != nil {
				t.Fatal(err)
			}
			waitLine(t, ctx, c, "ss2", func(s *nginx.Server) bool { return s.Operator && s.Agent })
			if err := n.SetMaintenance(ctx, false); err != nil {
				t.Fatal(err)
			}
			waitLine(t, ctx, c, "ss2", func(s *nginx.Server) bool { return !s.Agent })
			w.waitCount(t, ctx, "nginx reloaded", reloads+2)
			s := serverLine(t, c, "ss2")
			if !s.Operator || !s.Down() {
				t.Fatalf("the watcher lifted the operator's drain: %+v", s)
			}
			accepted := n.Msg.Accepted()
			for i := 0; i < 9; i++ {
				cn := dial(t, c.NginxFrontend)
				if err := cn.echo("x"); err != nil {
					t.Fatal(err)
				}
				cn.Close()
			}
			if got := n.Msg.Accepted(); got != accepted {
				t.Errorf("%d new connections reached the drained ss2", got-accepted)
			}
			if r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "enable", "ss2", "--timeout", "20s", "--poll", "50ms"); r.code != 0 {
				t.Fatalf("enable ss2: exit %d\n%s", r.code, r.stderr)
			}
		})

		t.Run("a failing agent takes its node out within fall x interval", func(t *testing.T) {
			n := c.Node("ss1")
			if err := n.StopAgent(); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			waitLine(t, ctx, c, "ss1", func(s *nginx.Server) bool { return s.Agent })
			took := time.Since(stopped)
			// fall polls of interval each, plus the poll that was running and nginx -t and the
			// reload on a shared machine.
			if limit := fall*interval + interval + 500*time.Millisecond; took > limit {
				t.Errorf("down after %s; want within fall x interval (+ one interval and 500ms): %s", took, limit)
			}
			t.Logf("agent stopped -> nginx line down in %s (fall %d x interval %s)", took, fall, interval)
			s := serverLine(t, c, "ss1")
			if !strings.HasPrefix(s.Reason, "unreachable") {
				t.Errorf("reason %q; want unreachable ...", s.Reason)
			}
			if err := n.StartAgent(ctx); err != nil {
				t.Fatal(err)
			}
			waitLine(t, ctx, c, "ss1", func(s *nginx.Server) bool { return !s.Down() })
		})

		w.stop(t)
		if strings.Contains(w.stderr.String(), "ERR") {
			t.Errorf("watch logged errors:\n%s", w.stderr.String())
		}

		t.Run("--once applies every answer at once", func(t *testing.T) {
			n := c.Node("ss1")
			if err := n.StopAgent(); err != nil {
				t.Fatal(err)
			}
			r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "watch", "--once", "--source", "127.0.0.250")
			if r.code != 0 || !strings.Contains(r.stderr, "ss1: down (agent: unreachable") {
				b, _ := os.ReadFile(c.ServersFile)
				t.Errorf("watch --once: exit %d\n%s\nservers file:\n%s", r.code, r.stderr, b)
			}
			if s := serverLine(t, c, "ss1"); !s.Agent {
				t.Errorf("after --once with ss1's agent stopped: %+v", s)
			}
			if err := n.StartAgent(ctx); err != nil {
				t.Fatal(err)
			}
			// until its first check results the agent says down
			node := lbadapters.Node{Name: n.Name, Address: n.IP, HealthPort: n.HealthPort}
			for lbadapters.Ready(ctx, lbadapters.HTTPAgent{}, node) != nil {
				select {
				case <-ctx.Done():
					t.Fatalf("ss1's agent never healthy:\n%s", n.Log(10))
				case <-time.After(50 * time.Millisecond):
				}
			}
			r = runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "watch", "--once", "--source", "127.0.0.250")
			if r.code != 0 || !strings.Contains(r.stderr, "ss1: up (agent: up)") {
				t.Errorf("watch --once: exit %d\n%s", r.code, r.stderr)
			}
			if s := serverLine(t, c, "ss1"); s.Down() {
				t.Errorf("after --once with ss1's agent back: %+v", s)
			}
		})
	})
}

// nginxStatus runs lbadapter status -o json --warn-only (the tests read the report while
// nodes are drained on purpose, which status reports with exit 1 otherwise).
func nginxStatus(t *testing.T, ctx context.Context, bin string, c *testenv.Cluster) lbadapters.Report {
	t.Helper()
	r := runLBAdapter(ctx, bin, "--config", c.ConfigPath, "status", "-o", "json", "--warn-only")
	var rep lbadapters.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || len(rep.Nodes) != len(c.Nodes) {
		t.Fatalf("status: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return rep
}

// serverLine reads the node's line of the cluster's servers file.
func serverLine(t *testing.T, c *testenv.Cluster, node string) *nginx.Server {
	t.Helper()
	f, _, err := nginx.ReadFile(c.ServersFile)
	if err != nil {
		t.Fatal(err)
	}
	n := c.Node(node)
	s := f.Find(n.IP, c.MsgPort)
	if s == nil {
		t.Fatalf("no line for %s in %s", node, c.ServersFile)
	}
	return s
}

// waitLine polls the servers file every 10ms until the node's line satisfies ok.
func waitLine(t *testing.T, ctx context.Context, c *testenv.Cluster, node string, ok func(*nginx.Server) bool) {
	t.Helper()
	for {
		if ok(serverLine(t, c, node)) {
			return
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(c.ServersFile)
			t.Fatalf("%s's line never changed as expected:\n%s", node, b)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// dialVia opens connections through addr until one lands on node n and returns it.
func dialVia(t *testing.T, addr string, n *testenv.ClusterNode) *conn {
	t.Helper()
	for i := 0; i < 12; i++ {
		before := n.Msg.Accepted()
		cn := dial(t, addr)
		if err := cn.echo("hello"); err != nil {
			t.Fatal(err)
		}
		if n.Msg.Accepted() > before {
			return cn
		}
		cn.Close()
	}
	t.Fatalf("no connection through %s reached %s", addr, n.Name)
	return nil
}

// nginxWorkers lists the pids of nginx's current (not shutting down) workers.
func nginxWorkers(t *testing.T, c *testenv.Cluster) string {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", "-P", pidOf(t, c.Nginx.PIDFile), "worker process$").Output()
	if err != nil {
		t.Fatalf("pgrep nginx workers: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

func pidOf(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// bg is an lbadapter running in the background.
type bg struct {
	cmd            *exec.Cmd
	stdout, stderr *testenv.Output
	done           chan struct{}
	code           int
}

func startLBAdapter(t *testing.T, ctx context.Context, bin string, args ...string) *bg {
	t.Helper()
	b := &bg{cmd: exec.CommandContext(ctx, bin, args...), stdout: &testenv.Output{}, stderr: &testenv.Output{}, done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = b.cmd.Wait()
		b.code = b.cmd.ProcessState.ExitCode()
		close(b.done)
	}()
	t.Cleanup(func() { b.stop(t) })
	return b
}

func (b *bg) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

func (b *bg) output() string { return b.stdout.String() + b.stderr.String() }

// waitStderr polls until stderr contains s.
func (b *bg) waitStderr(t *testing.T, ctx context.Context, s string) {
	t.Helper()
	for !strings.Contains(b.stderr.String(), s) {
		select {
		case <-ctx.Done():
			t.Fatalf("lbadapter never printed %q:\n%s", s, b.output())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitCount polls until stderr contains s at least n times.
func (b *bg) waitCount(t *testing.T, ctx context.Context, s string, n int) {
	t.Helper()
	for strings.Count(b.stderr.String(), s) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("lbadapter printed %q fewer than %d times:\n%s", s, n, b.output())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (b *bg) wait(t *testing.T, ctx context.Context) int {
	t.Helper()
	select {
	case <-b.done:
		return b.code
	case <-ctx.Done():
		t.Fatalf("lbadapter did not return:\n%s", b.output())
		return -1
	}
}

// stop ends the program with SIGTERM (it is ours) and waits for it.
func (b *bg) stop(t *testing.T) {
	if b.exited() {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}
