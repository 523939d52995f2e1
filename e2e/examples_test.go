package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
)

// TestShippedExamples: `lbadapter status` with examples/cluster.ini against
// haproxy/examples/haproxy.cfg, run by a real HAProxy in front of three real lbagents on
// loopback, succeeds and shows the example's nodes UP and healthy: the two files describe one
// cluster. Both files are used as shipped except for what cannot be on this machine, rewritten
// the same way in both:
//   - /run/haproxy/ and /var/lib/haproxy/ (runtime API socket, server-state file) -> the
//     test's directory;
//   - the node addresses 10.0.0.11, .12, .13 -> the cluster's 127.0.0.2, .3, .4;
//   - the ports 5588 (health) and 5589 (agent-check) -> ports free on those addresses;
//   - the frontends' "bind :5500" / "bind :5577" -> 127.0.0.1 on free ports.
func TestShippedExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, two HAProxies and three lbagents")
	}
	testenv.Require(t, "haproxy")
	agentBin, lbadapter := buildBoth(t)
	c := testenv.NewCluster(t, testenv.ClusterOptions{LBAgent: agentBin, SharedHealthPort: true, SharedAgentPort: true})
	health, agent := c.Nodes[0].HealthPort, c.Nodes[0].AgentPort

	dir := t.TempDir()
	rw := []string{"/run/haproxy/", dir + "/", "/var/lib/haproxy/", dir + "/",
		"5588", strconv.Itoa(health), "5589", strconv.Itoa(agent)}
	for i, n := range c.Nodes {
		rw = append(rw, fmt.Sprintf("10.0.0.%d", 11+i), n.IP)
	}
	rewrite := strings.NewReplacer(rw...)
	read := func(path string) string {
		b, err := os.ReadFile(filepath.Join("..", path))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cfg := rewrite.Replace(read("haproxy/examples/haproxy.cfg"))
	cfg = regexp.MustCompile(`(?m)^(\s*bind\s+):\d+`).ReplaceAllStringFunc(cfg, func(s string) string {
		port, err := testenv.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(s, ":")[0] + "127.0.0.1:" + strconv.Itoa(port)
	})
	ha := testenv.NewHAProxy(t, testenv.HAProxyOptions{Dir: dir, Config: cfg})
	if ha.AdminSocket != filepath.Join(dir, "admin.sock") {
		t.Fatalf("the example's runtime API is not testenv's: %s", ha.AdminSocket)
	}
	clusterINI := filepath.Join(dir, "cluster.ini")
	if err := os.WriteFile(clusterINI, []byte(rewrite.Replace(read("examples/cluster.ini"))), 0o600); err != nil {
		t.Fatal(err)
	}

	// HAProxy's first checks take up to inter (2s) × rise (2) of the example: while status
	// exits 1 (a node not yet UP), ask again, for at most 30 s. Any other code is final.
	deadline := time.Now().Add(30 * time.Second)
	var r result
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r = runLBAdapter(ctx, lbadapter, "--config", clusterINI, "status")
		cancel()
		if r.code != 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.code != 0 {
		t.Fatalf("lbadapter status with examples/cluster.ini: exit %d\n%s%s\nhaproxy:\n%s", r.code, r.stdout, r.stderr, ha.Log(20))
	}
	for i, n := range c.Nodes {
		role := map[bool]string{true: "primary", false: "secondary"}[i == 0]
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^ss%d\s+%s\s+%s\s+healthy\s+UP\s`, i+1, role, regexp.QuoteMeta(n.IP)))
		if !row.MatchString(r.stdout) {
			t.Errorf("status shows no row \"ss%d %s %s healthy UP\":\n%s", i+1, role, n.IP, r.stdout)
		}
	}
}
