package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
)

// TestHAProxyLua runs a real HAProxy with haproxy/lua/lbkit.lua polling the /lb line of a
// 3-node cluster's real lbagents (interval 200ms, fall 2, rise 2) on a backend without
// agent-check.
func TestHAProxyLua(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, two HAProxies and three lbagents")
	}
	agentBin, err := testenv.BuildLBAgent(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.NewCluster(t, testenv.ClusterOptions{LBAgent: agentBin, SharedHealthPort: true, NoAgentCheck: true})
	lua, err := filepath.Abs("../haproxy/lua/lbkit.lua")
	if err != nil {
		t.Fatal(err)
	}
	be := testenv.HABackend{Name: "xroad", Options: []string{"balance roundrobin"}}
	for _, n := range c.Nodes {
		// a TCP check of the message port, so that show stat shows DRAIN (a server without
		// checks shows "no check" whatever its admin state)
		be.Servers = append(be.Servers, testenv.HAServer{Name: n.Name, Addr: n.Msg.Addr, Options: "check inter 500ms weight 100"})
	}
	h := testenv.NewHAProxy(t, testenv.HAProxyOptions{
		Global: []string{"setenv LBKIT_BACKENDS xroad", "setenv LBKIT_AGENT_PORT " + strconv.Itoa(c.Nodes[0].HealthPort),
			"setenv LBKIT_INTERVAL 200", "setenv LBKIT_FALL 2", "setenv LBKIT_RISE 2", "lua-load " + lua},
		Frontends: []testenv.HAFrontend{{Name: "messages", Bind: "127.0.0.1:0", Backend: "xroad"}},
		Backends:  []testenv.HABackend{be}})
	front := h.FrontendAddr("messages")
	var statField func(server, field string) string
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	status := func(server string) string { return statField(server, "status") }
	statField = func(server, field string) string {
		t.Helper()
		out, err := h.CLI(ctx, "show stat")
		if err != nil {
			t.Fatalf("%v\n%s", err, h.Log(30))
		}
		lines := strings.Split(out, "\n")
		col := map[string]int{}
		for i, name := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
			col[name] = i
		}
		for _, l := range lines[1:] {
			f := strings.Split(l, ",")
			if len(f) > col[field] && f[col["pxname"]] == "xroad" && f[col["svname"]] == server {
				return f[col[field]]
			}
		}
		t.Fatalf("no server xroad/%s in show stat", server)
		return ""
	}
	waitStatus := func(server, prefix string) time.Time {
		t.Helper()
		for !strings.HasPrefix(status(server), prefix) {
			select {
			case <-ctx.Done():
				t.Fatalf("xroad/%s is %q, never %s\n%s", server, status(server), prefix, h.Log(20))
			case <-time.After(10 * time.Millisecond):
			}
		}
		return time.Now()
	}
	noNewConns := func(n *testenv.ClusterNode) {
		t.Helper()
		accepted := n.Msg.Accepted()
		for i := 0; i < 9; i++ {
			cn := dial(t, front)
			if err := cn.echo("x"); err != nil {
				t.Fatal(err)
			}
			cn.Close()
		}
		if got := n.Msg.Accepted(); got != accepted {
			t.Errorf("%d new connections reached %s", got-accepted, n.Name)
		}
	}

	t.Run("maintenance drains, leaving it readies", func(t *testing.T) {
		n := c.Node("ss2")
		if err := n.SetMaintenance(ctx, true); err != nil {
			t.Fatal(err)
		}
		waitStatus("ss2", "DRAIN")
		noNewConns(n)
		if err := n.SetMaintenance(ctx, false); err != nil {
			t.Fatal(err)
		}
		waitStatus("ss2", "UP")
		if !strings.Contains(h.Log(100), "lbkit: xroad/ss2 DRAIN (agent: drain)") {
			t.Errorf("HAProxy log lacks lbkit's change:\n%s", h.Log(20))
		}
	})

	t.Run("an operator's drain is never undone", func(t *testing.T) {
		n := c.Node("ss3")
		if _, err := h.CLI(ctx, "set server xroad/ss3 state drain"); err != nil {
			t.Fatal(err)
		}
		// ss1 goes into maintenance and back as a clock: lbkit polls every server in the same
		// rhythm, so once ss1 has been DRAIN and UP again, ss3 has been polled several times.
		cycle := func() {
			t.Helper()
			s1 := c.Node("ss1")
			if err := s1.SetMaintenance(ctx, true); err != nil {
				t.Fatal(err)
			}
			waitStatus("ss1", "DRAIN")
			if err := s1.SetMaintenance(ctx, false); err != nil {
				t.Fatal(err)
			}
			waitStatus("ss1", "UP")
		}
		if err := n.SetMaintenance(ctx, true); err != nil {
			t.Fatal(err)
		}
		cycle() // lbkit read ss3's "drain"
		if err := n.SetMaintenance(ctx, false); err != nil {
			t.Fatal(err)
		}
		cycle() // and its "up ready", "up", "up"
		if st := status("ss3"); !strings.HasPrefix(st, "DRAIN") {
			t.Fatalf("the operator's drain of ss3 became %q\n%s", st, h.Log(30))
		}
		noNewConns(n)
		if _, err := h.CLI(ctx, "set server xroad/ss3 state ready"); err != nil {
			t.Fatal(err)
		}
		waitStatus("ss3", "UP")
	})

	t.Run("up N% sets the weight", func(t *testing.T) {
		n := c.Node("ss2")
		nodeINI := filepath.Join(n.XRoad.XRoadDir, "conf.d", "node.ini")
		orig, err := os.ReadFile(nodeINI)
		if err != nil {
			t.Fatal(err)
		}
		restart := func(text []byte) {
			t.Helper()
			if err := os.WriteFile(nodeINI, text, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := n.StopAgent(); err != nil {
				t.Fatal(err)
			}
			if err := n.StartAgent(ctx); err != nil {
				t.Fatal(err)
			}
		}
		waitWeight := func(want string) {
			t.Helper()
			for statField("ss2", "weight") != want {
				select {
				case <-ctx.Done():
					t.Fatalf("xroad/ss2 weight %s, never %s\n%s", statField("ss2", "weight"), want, h.Log(20))
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		restart(append(append([]byte{}, orig...), "\n[agent-check]\nweight = 25\n"...))
		waitWeight("25")
		restart(orig) // lbagent says "up" without a weight: HAProxy keeps the last one, as with the agent-check
		if err := n.SetMaintenance(ctx, true); err != nil {
			t.Fatal(err)
		}
		waitStatus("ss2", "DRAIN")
		if err := n.SetMaintenance(ctx, false); err != nil {
			t.Fatal(err)
		}
		waitStatus("ss2", "UP")
		if w := statField("ss2", "weight"); w != "25" {
			t.Errorf("weight after an answer without one: %s; want 25 kept", w)
		}
		if _, err := h.CLI(ctx, "set server xroad/ss2 weight 100"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a stopped agent is out within fall x interval", func(t *testing.T) {
		n := c.Node("ss1")
		if err := n.StopAgent(); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		took := waitStatus("ss1", "MAINT").Sub(stopped)
		t.Logf("agent stopped -> MAINT in HAProxy in %s (fall 2 x interval 200ms)", took)
		if limit := 2*200*time.Millisecond + 200*time.Millisecond + 500*time.Millisecond; took > limit {
			t.Errorf("MAINT after %s; want within %s", took, limit)
		}
		noNewConns(n)
		if err := n.StartAgent(ctx); err != nil {
			t.Fatal(err)
		}
		waitStatus("ss1", "UP")
	})
}
