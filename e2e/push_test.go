package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/testenv"
)

// TestPushBeatsInterTimesFall uses production check timing (inter 2s fall 3, no agent-check)
// so that without push a failure takes inter × fall (about 6 s) to show. With push the agent
// tells HAProxy at once: DOWN must show well before one inter.
func TestPushBeatsInterTimesFall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, HAProxy and three lbagents")
	}
	testenv.Require(t, "haproxy")
	c := testenv.NewCluster(t, testenv.ClusterOptions{Push: true, NoAgentCheck: true, Check: "inter 2s fall 3 rise 2"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := c.Node("ss3")
	start := time.Now()
	if err := n.XRoad.Break(testenv.FaultGlobalConfExpired); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServer(ctx, "ss3", statusPrefix("DOWN")); err != nil {
		t.Fatalf("%v\n%s", err, n.Log(10))
	}
	// The check itself notices within success-ttl (200ms) plus its run; inter × fall is 6 s.
	if took := time.Since(start); took >= 2*time.Second {
		t.Errorf("failure took %s to show in HAProxy with push; want well under inter × fall (6s)", took)
	}
	for _, other := range []string{"ss1", "ss2"} {
		if st, _, err := c.ServerStatus(ctx, other); err != nil || st != "UP" {
			t.Errorf("%s: %q, %v; want UP", other, st, err)
		}
	}
}

// TestPushLiftsItsDrainAfterRestart is issue 12's bug 1: push's "we pushed drain" lived in
// memory, so after maintenance → "state drain" → a restart with maintenance off, only
// "health up" was sent and HAProxy kept the node in DRAIN while /status said healthy. The
// drain push set is kept in the agent's one state file and lifted after the restart; an
// operator's drain is still never lifted by a restart.
func TestPushLiftsItsDrainAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, HAProxy and three lbagents")
	}
	testenv.Require(t, "haproxy")
	// HTTP checks only: no agent-check "ready" can lift the drain, only push.
	c := testenv.NewCluster(t, testenv.ClusterOptions{Push: true, NoAgentCheck: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := haproxy.NewClient(c.HAProxy.AdminSocket)
	n := c.Node("ss3")
	adminState := func() haproxy.ServerState {
		t.Helper()
		states, err := client.ServersState(ctx, c.Backend)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if s.ServerName == n.Name {
				return s
			}
		}
		t.Fatalf("no server %s in show servers state", n.Name)
		return haproxy.ServerState{}
	}
	waitDrain := func(want bool) {
		t.Helper()
		for !(adminState().Drain() == want) {
			select {
			case <-ctx.Done():
				t.Fatalf("ss3 drain: got %v, want %v\n%s", !want, want, n.Log(10))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}

	if err := n.SetMaintenance(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitDrain(true) // pushed "state drain"
	if err := n.StopAgent(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(n.StateFile()); err != nil || !strings.Contains(string(b), "pushed drain") {
		t.Errorf("state file after maintenance: %q, %v; want it to record the pushed drain", b, err)
	}
	if err := n.StartAgent(ctx); err != nil { // maintenance is not kept over a restart (as X-Road)
		t.Fatal(err)
	}
	// Checks pass within a second of the start (success-ttl 200ms, rise 2 × inter 200ms).
	upCtx, upCancel := context.WithTimeout(ctx, 10*time.Second)
	defer upCancel()
	if err := c.WaitServer(upCtx, n.Name, func(s string) bool { return s == "UP" }); err != nil {
		st := adminState()
		t.Fatalf("after a restart out of maintenance: %v (drain %v): push left its own drain\n%s", err, st.Drain(), n.Log(10))
	}
	if _, err := os.Stat(n.StateFile()); !os.IsNotExist(err) {
		t.Errorf("state file after the drain was lifted: %v; want it removed (nothing to keep)", err)
	}

	// An operator's drain survives a restart of the agent: push says "health up" only.
	if err := client.SetServerState(ctx, c.Backend, n.Name, haproxy.StateDrain); err != nil {
		t.Fatal(err)
	}
	waitDrain(true)
	if err := n.StopAgent(); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(readFile(t, n.LogPath()), "pushed to HAProxy")
	if err := n.StartAgent(ctx); err != nil {
		t.Fatal(err)
	}
	for strings.Count(readFile(t, n.LogPath()), "pushed to HAProxy") == before { // the first push after the restart
		select {
		case <-ctx.Done():
			t.Fatalf("no push after the restart\n%s", n.Log(10))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !adminState().Drain() {
		t.Errorf("the operator's drain was lifted by a restart of the agent\n%s", n.Log(10))
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
