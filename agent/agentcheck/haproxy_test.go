package agentcheck_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/verdict"
	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/testenv"
)

// countingListener counts accepted connections (agent checks made by HAProxy).
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type rig struct {
	t      *testing.T
	store  *verdict.Store
	srv    *agentcheck.Server
	ln     *countingListener
	client *haproxy.Client
}

// newRig starts an agent-check server for one node and a real HAProxy whose server node1
// uses it as its agent (agent-inter 100ms), with weight 100.
func newRig(t *testing.T, cfg agentcheck.Config) *rig {
	t.Helper()
	if testing.Short() {
		t.Skip("starts HAProxy")
	}
	testenv.Require(t, "haproxy")
	store := verdict.NewStore("secondary", []check.Spec{{Name: "Global conf validity"}})
	store.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusPass})
	srv, err := agentcheck.New(cfg, store, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: l}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	msg, err := net.Listen("tcp", "127.0.0.1:0") // the node's message port stand-in
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { msg.Close() })
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	h := testenv.NewHAProxy(t, testenv.HAProxyOptions{Backends: []testenv.HABackend{{Name: "xroad",
		Servers: []testenv.HAServer{{Name: "node1", Addr: msg.Addr().String(),
			Options: "weight 100 agent-check agent-addr 127.0.0.1 agent-port " + port + " agent-inter 100ms"}}}}})
	return &rig{t: t, store: store, srv: srv, ln: ln, client: haproxy.NewClient(h.AdminSocket)}
}

// waitStatus polls show stat until node1's status is want, or want with a reason such as
// "DRAIN (agent)".
func (r *rig) waitStatus(want string) haproxy.StatRow {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var row haproxy.StatRow
	var err error
	for time.Now().Before(deadline) {
		row, err = r.client.Server(context.Background(), "xroad", "node1")
		if err == nil && (row.Status == want || strings.HasPrefix(row.Status, want+" (")) {
			return row
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("node1 status: got %q (%v); want %q", row.Status, err, want)
	return row
}

// waitChecks waits until HAProxy has made n more agent checks.
func (r *rig) waitChecks(n int64) {
	r.t.Helper()
	target := r.ln.n.Load() + n
	deadline := time.Now().Add(20 * time.Second)
	for r.ln.n.Load() < target {
		if time.Now().After(deadline) {
			r.t.Fatalf("HAProxy made %d agent checks; want %d", r.ln.n.Load(), target)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHAProxyFollowsAgent(t *testing.T) {
	r := newRig(t, agentcheck.Config{Weight: 50})
	r.waitChecks(1)
	if row := r.waitStatus("no check"); row.Weight != 50 {
		t.Errorf("healthy: weight got %d; want 50 (up 50%%)", row.Weight)
	}

	r.store.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusFail,
		Message: "Global configuration is expired"})
	row := r.waitStatus("DOWN (agent)")
	if got := row.Fields["last_agt"]; !strings.Contains(got, "Global configuration is expired") {
		t.Errorf("last_agt got %q; want the failure text", got)
	}

	r.store.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusPass})
	r.waitStatus("no check")

	r.store.SetMaintenance(true)
	r.waitStatus("DRAIN")
	states, err := r.client.ServersState(context.Background(), "xroad")
	if err != nil || len(states) != 1 || !states[0].Drain() {
		t.Errorf("agent drain: servers state got %+v, %v; want the drain bit", states, err)
	}
	r.store.SetMaintenance(false)
	r.waitStatus("no check") // the agent lifts its own drain with "ready"
}

func TestOperatorMaintSurvivesAgent(t *testing.T) {
	r := newRig(t, agentcheck.Config{})
	r.waitChecks(1)
	r.waitStatus("no check")
	ctx := context.Background()
	for _, st := range []haproxy.AdminState{haproxy.StateMaint, haproxy.StateDrain} {
		if err := r.client.SetServerState(ctx, "xroad", "node1", st); err != nil {
			t.Fatal(err)
		}
		want := strings.ToUpper(string(st))
		r.waitStatus(want)
		r.waitChecks(20) // 20 agent intervals
		row, err := r.client.Server(ctx, "xroad", "node1")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(row.Status, want) {
			t.Fatalf("after 20 agent checks: status got %q; want %q (the agent undid the operator)", row.Status, want)
		}
		if err := r.client.SetServerState(ctx, "xroad", "node1", haproxy.StateReady); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMaintWordAndLift(t *testing.T) {
	r := newRig(t, agentcheck.Config{MaintenanceWord: "maint"})
	r.waitChecks(1)
	r.store.SetMaintenance(true)
	r.waitStatus("MAINT")
	r.store.SetMaintenance(false)
	r.waitStatus("no check")
	r.waitChecks(10)
	if row, _ := r.client.Server(context.Background(), "xroad", "node1"); row.Status != "no check" {
		t.Fatalf("after lifting: status got %q; want %q", row.Status, "no check")
	}
}

// TestOperatorDrainRightAfterMaintenance: the node's maintenance ends, the agent's "ready"
// lifts its own drain, and the operator drains the server at once. The agent owed "ready" to
// this HAProxy only once, so the operator's drain stays.
func TestOperatorDrainRightAfterMaintenance(t *testing.T) {
	r := newRig(t, agentcheck.Config{})
	r.waitChecks(1)
	r.waitStatus("no check")
	r.store.SetMaintenance(true)
	r.waitStatus("DRAIN")
	r.store.SetMaintenance(false)
	r.waitStatus("no check") // HAProxy has the agent's "ready"
	ctx := context.Background()
	if err := r.client.SetServerState(ctx, "xroad", "node1", haproxy.StateDrain); err != nil {
		t.Fatal(err)
	}
	target := r.ln.n.Load() + 20 // 20 agent intervals, every status seen must be DRAIN
	deadline := time.Now().Add(20 * time.Second)
	for r.ln.n.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy made %d agent checks; want %d", r.ln.n.Load(), target)
		}
		row, err := r.client.Server(ctx, "xroad", "node1")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(row.Status, "DRAIN") { // "DRAIN (agent)" whenever an agent is enabled
			t.Fatalf("status got %q; want DRAIN (the agent lifted the operator's drain)", row.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p := r.srv.Phase(); p != "idle" {
		t.Errorf("agent phase got %s; want idle (its only peer had its ready)", p)
	}
	states, err := r.client.ServersState(ctx, "xroad")
	if err != nil || len(states) != 1 || !states[0].Drain() {
		t.Errorf("servers state got %+v, %v; want the drain bit", states, err)
	}
}
