package testenv

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestClusterStartsUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, HAProxy and three lbagents")
	}
	c := NewCluster(t, ClusterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(c.Nodes) != 3 {
		t.Fatalf("got %d nodes; want 3", len(c.Nodes))
	}
	for i, n := range c.Nodes {
		if want := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}[i]; n.IP != want {
			t.Errorf("node %d IP %s; want %s", i, n.IP, want)
		}
		st, _, err := c.ServerStatus(ctx, n.Name)
		if err != nil || st != "UP" {
			t.Errorf("%s: got %q, %v; want UP", n.Name, st, err)
		}
	}
	// The demo prints the agent's answer to the guide's curl (issue 12, bug 8: it printed none).
	for _, tt := range []struct {
		on   bool
		want string
	}{{true, "Maintenance mode set: false => true\n"}, {false, "Maintenance mode set: true => false\n"}} {
		if got, err := c.Node("ss2").Maintenance(ctx, tt.on); err != nil || got != tt.want {
			t.Errorf("Maintenance(%v) = %q, %v; want %q", tt.on, got, err, tt.want)
		}
	}
	cfg, err := readFile(c.ConfigPath)
	if err != nil || !strings.Contains(cfg, c.HAProxy.AdminSocket) || !strings.Contains(cfg, `[node "ss3"]`) {
		t.Errorf("cluster.ini: %v\n%s", err, cfg)
	}
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
