package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/testenv"
)

// TestHAProxyCluster runs a 3-node cluster (lbagent, message stand-in) behind a real HAProxy
// with inter 200ms fall 3 rise 2 and agent-inter 200ms. The subtests share the cluster and
// each leaves every node UP.
func TestHAProxyCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, HAProxy and three lbagents")
	}
	testenv.Require(t, "haproxy")
	agentBin, lbadapter := buildBoth(t)
	c := testenv.NewCluster(t, testenv.ClusterOptions{LBAgent: agentBin})
	rt := haproxy.NewClient(c.HAProxy.AdminSocket)

	allUp := func(t *testing.T, ctx context.Context) {
		t.Helper()
		for _, n := range c.Nodes {
			if err := c.WaitServer(ctx, n.Name, statusIs("UP")); err != nil {
				t.Fatalf("%v\n%s", err, n.Log(10))
			}
		}
	} // enableAndWait runs lbadapter enable NODE and waits until every node is UP again.
	enableAndWait := func(t *testing.T, ctx context.Context, node string) {
		t.Helper()
		r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "enable", node, "--timeout", "20s", "--poll", "50ms")
		if r.code != 0 {
			t.Fatalf("enable %s: exit %d: %s", node, r.code, r.stderr)
		}
		allUp(t, ctx)
	}

	t.Run("status", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "status", "-o", "json")
		if r.code != 0 {
			t.Fatalf("status exit %d: %s", r.code, r.stderr)
		}
		var rep lbadapters.Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, r.stdout)
		}
		rows := rep.Nodes
		if len(rows) != 3 {
			t.Fatalf("got %d rows; want 3", len(rows))
		}
		for i, row := range rows {
			wantRole := map[bool]string{true: "primary", false: "secondary"}[i == 0]
			if row.Agent == nil || row.Agent.State != "healthy" || row.Agent.Role != wantRole {
				t.Errorf("%s agent: got %+v (%s); want healthy %s", row.Node.Name, row.Agent, row.AgentError, wantRole)
			}
			if len(row.Balancers) != 1 || row.Balancers[0].State == nil || row.Balancers[0].State.State != lbadapters.StateUp {
				t.Errorf("%s balancers: got %+v; want one UP", row.Node.Name, row.Balancers)
			}
		}
		r = runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "status")
		if r.code != 0 || !strings.Contains(r.stdout, "ss2   secondary") || !strings.Contains(r.stdout, "healthy") {
			t.Errorf("status table (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("failing node goes DOWN", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := c.Node("ss3")
		if err := n.XRoad.Break(testenv.FaultGlobalConfExpired); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitServer(ctx, "ss3", statusPrefix("DOWN")); err != nil {
			t.Fatalf("%v\n%s", err, n.Log(10))
		}
		r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "status")
		if !strings.Contains(r.stdout, "Global configuration is expired") || !strings.Contains(r.stdout, "unhealthy") {
			t.Errorf("status does not show the reason:\n%s", r.stdout)
		}
		// For monitoring: exit 1 with one line per problem; --warn-only: exit 0.
		if r.code != 1 || !strings.Contains(r.stderr, "lbadapter: ss3: agent unhealthy: Global configuration is expired") ||
			!strings.Contains(r.stderr, "lbadapter: ss3: DOWN") {
			t.Errorf("status with ss3 DOWN: exit %d; want 1 and the agent's and HAProxy's lines\n%s", r.code, r.stderr)
		}
		if r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "status", "--warn-only"); r.code != 0 {
			t.Errorf("status --warn-only with ss3 DOWN: exit %d; want 0\n%s", r.code, r.stderr)
		}
		if err := n.XRoad.Fix(testenv.FaultGlobalConfExpired); err != nil {
			t.Fatal(err)
		}
		allUp(t, ctx)
	})

	t.Run("maintenance drains, held connection keeps flowing", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := c.Node("ss2")
		held := dialTo(t, ctx, c, n)
		if err := n.SetMaintenance(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitServer(ctx, "ss2", statusPrefix("DRAIN")); err != nil {
			t.Fatal(err)
		}
		accepted := n.Msg.Accepted()
		for i := 0; i < 6; i++ {
			if err := dial(t, c.Frontend).echo("new"); err != nil {
				t.Fatal(err)
			}
		}
		if got := n.Msg.Accepted(); got != accepted {
			t.Errorf("drained ss2 accepted %d new connections; want 0", got-accepted)
		}
		if err := held.echo("still here"); err != nil {
			t.Errorf("held connection through drained ss2: %v", err)
		}
		if err := n.SetMaintenance(ctx, false); err != nil {
			t.Fatal(err)
		}
		allUp(t, ctx)
		agentIdle(t, ctx, n) // its one "ready" delivered, the agent owes HAProxy nothing
	})

	t.Run("operator maint survives agent intervals", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rt.SetServerState(ctx, c.Backend, "ss1", haproxy.StateMaint); err != nil {
			t.Fatal(err)
		}
		// 15 agent intervals of 200ms: the agent answers "up" each time and must not lift it.
		start := time.Now()
		for time.Since(start) < 3*time.Second {
			st, _, err := c.ServerStatus(ctx, "ss1")
			if err != nil || !strings.HasPrefix(st, "MAINT") {
				t.Fatalf("after %s: ss1 %q, %v; want MAINT", time.Since(start).Round(time.Millisecond), st, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		row, err := rt.Server(ctx, c.Backend, "ss1")
		if err != nil {
			t.Fatal(err)
		}
		if a := row.Fields["agent_status"]; !strings.HasPrefix(a, "L7OK") {
			t.Errorf("agent_status %q; want L7OK (the agent was being polled)", a)
		}
		enableAndWait(t, ctx, "ss1")
	})

	t.Run("lbadapter drain waits for the held connection", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		n := c.Node("ss2")
		held := dialTo(t, ctx, c, n)
		cmd := exec.CommandContext(ctx, lbadapter, "--config", c.ConfigPath, "drain", "ss2", "--timeout", "30s", "--poll", "50ms")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := c.WaitServer(ctx, "ss2", statusPrefix("DRAIN")); err != nil {
			t.Fatalf("%v\nlbadapter: %s%s", err, stdout.String(), stderr.String())
		}
		select { // ten polls of lbadapter with the connection still open: it must keep waiting
		case err := <-exited:
			t.Fatalf("drain returned while a connection was open: %v\n%s%s", err, stdout.String(), stderr.String())
		case <-time.After(500 * time.Millisecond):
		}
		if err := held.echo("draining"); err != nil {
			t.Errorf("held connection during drain: %v", err)
		}
		held.Close()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("drain: %v\n%s", err, stderr.String())
			}
		case <-ctx.Done():
			t.Fatal("drain did not return after the connection closed")
		}
		if !strings.Contains(stderr.String(), "1 session left") {
			t.Errorf("no progress line with 1 session left:\n%s", stderr.String())
		}
		if !strings.Contains(stdout.String(), "ss2: drained") {
			t.Errorf("stdout %q; want ss2: drained", stdout.String())
		}
		// An operator's drain outlives agent intervals too.
		if st, _, err := c.ServerStatus(ctx, "ss2"); err != nil || !strings.HasPrefix(st, "DRAIN") {
			t.Errorf("after drain: %q, %v; want DRAIN", st, err)
		}
		r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "enable", "ss2", "--timeout", "20s", "--poll", "50ms")
		if r.code != 0 || !strings.Contains(r.stdout, "ss2: enabled (UP") {
			t.Fatalf("enable ss2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if st, _, _ := c.ServerStatus(ctx, "ss2"); st != "UP" {
			t.Errorf("after enable: %q; want UP", st)
		}
	})

	t.Run("drain right after maintenance", func(t *testing.T) {
		// The agent lifts its own drain with one "ready" to HAProxy, then owes it nothing:
		// an operator's drain set right after stays, and lbadapter drain waits it out.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := c.Node("ss2")
		held := dialTo(t, ctx, c, n)
		if err := n.SetMaintenance(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitServer(ctx, "ss2", statusPrefix("DRAIN")); err != nil {
			t.Fatal(err)
		}
		if err := n.SetMaintenance(ctx, false); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitServer(ctx, "ss2", statusIs("UP")); err != nil { // HAProxy has the "ready"
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, lbadapter, "--config", c.ConfigPath, "drain", "ss2", "--timeout", "20s", "--poll", "20ms")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := c.WaitServer(ctx, "ss2", statusPrefix("DRAIN")); err != nil {
			t.Fatalf("%v\nlbadapter: %s%s", err, stdout.String(), stderr.String())
		}
		// 15 agent intervals of 200ms: every status seen is DRAIN and lbadapter keeps waiting.
		start := time.Now()
		for time.Since(start) < 3*time.Second {
			st, _, err := c.ServerStatus(ctx, "ss2")
			if err != nil || !strings.HasPrefix(st, "DRAIN") {
				t.Fatalf("after %s: ss2 %q, %v; want DRAIN (the agent lifted the operator's drain)\nlbadapter: %s",
					time.Since(start).Round(time.Millisecond), st, err, stderr.String())
			}
			select {
			case err := <-exited:
				t.Fatalf("drain returned while a connection was open: %v\n%s%s", err, stdout.String(), stderr.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		agentIdle(t, ctx, n)
		held.Close()
		select {
		case err := <-exited:
			if err != nil || !strings.Contains(stdout.String(), "ss2: drained") {
				t.Fatalf("drain: %v\n%s%s", err, stdout.String(), stderr.String())
			}
		case <-ctx.Done():
			t.Fatal("drain did not return after the connection closed")
		}
		enableAndWait(t, ctx, "ss2")
	})

	t.Run("drain timeout and --no-wait", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := c.Node("ss3")
		held := dialTo(t, ctx, c, n)
		r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "drain", "ss3", "--timeout", "300ms", "--poll", "50ms")
		if r.code != 5 || !strings.Contains(r.stderr, "timed out after") || !strings.Contains(r.stderr, "1 session left") {
			t.Errorf("drain with a held connection and --timeout 300ms: exit %d, %q; want 5 and a timeout message", r.code, r.stderr)
		}
		r = runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "drain", "ss3", "--no-wait")
		if r.code != 0 || !strings.Contains(r.stdout, "1 session left (not waiting)") {
			t.Errorf("drain --no-wait: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		held.Close()
		if r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "enable", "ss3", "--poll", "50ms"); r.code != 0 {
			t.Fatalf("enable ss3: exit %d: %s", r.code, r.stderr)
		}
		allUp(t, ctx)
	})

	t.Run("enable refuses a node in maintenance", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := c.Node("ss3")
		if err := n.SetMaintenance(ctx, true); err != nil {
			t.Fatal(err)
		}
		r := runLBAdapter(ctx, lbadapter, "--config", c.ConfigPath, "enable", "ss3")
		if r.code != 6 || !strings.Contains(r.stderr, "maintenance mode") {
			t.Errorf("enable in maintenance: exit %d, %q; want 6", r.code, r.stderr)
		}
		if err := n.SetMaintenance(ctx, false); err != nil {
			t.Fatal(err)
		}
		allUp(t, ctx)
		agentIdle(t, ctx, n)
	})

	t.Run("one-line errors and exit codes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg, err := os.ReadFile(c.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		write := func(name, from, to string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(strings.Replace(string(cfg), from, to, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		wrongBackend := write("backend.ini", "backend = xroad", "backend = nope")
		noSocket := write("socket.ini", c.HAProxy.AdminSocket, filepath.Join(dir, "missing.sock"))
		tests := []struct {
			name string
			args []string
			code int
			msg  string
		}{
			{"unknown node", []string{"--config", c.ConfigPath, "drain", "ss9"}, 2, `unknown node "ss9"`},
			{"wrong backend", []string{"--config", wrongBackend, "drain", "ss2"}, 4, `has no backend "nope"`},
			{"unreachable socket", []string{"--config", noSocket, "drain", "ss2"}, 3, "unreachable"},
			{"status unreachable", []string{"--config", noSocket, "status"}, 3, "unreachable"},
			{"missing config", []string{"--config", filepath.Join(dir, "none.ini"), "status"}, 2, "no such file"},
			{"no node argument", []string{"--config", c.ConfigPath, "drain"}, 2, "exactly one NODE"},
			{"bad flag", []string{"--config", c.ConfigPath, "drain", "ss2", "--timeout", "soon"}, 2, "--timeout"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := runLBAdapter(ctx, lbadapter, tt.args...)
				if r.code != tt.code {
					t.Errorf("exit %d; want %d\n%s", r.code, tt.code, r.stderr)
				}
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if len(lines) != 1 || !strings.Contains(lines[0], tt.msg) || !strings.HasPrefix(lines[0], "lbadapter: ") {
					t.Errorf("stderr %q; want one line 'lbadapter: ...%s...'", r.stderr, tt.msg)
				}
			})
		}
		allUp(t, ctx)
	})
}

// agentIdle waits until node n's agent-check is idle (/status), i.e. owes no balancer "ready".
func agentIdle(t *testing.T, ctx context.Context, n *testenv.ClusterNode) {
	t.Helper()
	last := ""
	for {
		if phase, err := agentPhase(ctx, n); err == nil {
			if phase == "idle" {
				return
			}
			last = phase
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s agent-check phase still %q: %v", n.Name, last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// agentPhase reads the agent-check phase from node n's /status.
func agentPhase(ctx context.Context, n *testenv.ClusterNode) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.StatusURL(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st struct {
		Components struct {
			AgentCheck struct {
				Phase string `json:"phase"`
			} `json:"agent-check"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", fmt.Errorf("%s /status: %w", n.Name, err)
	}
	if st.Components.AgentCheck.Phase == "" {
		return "", fmt.Errorf("%s /status: no agent-check phase", n.Name)
	}
	return st.Components.AgentCheck.Phase, nil
}
