package e2e

import (
	"context"
	"testing"
	"time"

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
