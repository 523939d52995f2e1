package agent

import (
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/testenv"
)

// iniBlock returns the first ```ini block after heading in a Markdown file, exactly as printed.
func iniBlock(t *testing.T, path, heading string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, heading)
	if i < 0 {
		t.Fatalf("%s: no %q", path, heading)
	}
	m := regexp.MustCompile("(?s)```ini\n(.*?)```").FindStringSubmatch(doc[i:])
	if m == nil {
		t.Fatalf("%s: no ini block after %q", path, heading)
	}
	return m[1]
}

// TestSecurityDocSettings loads the settings block of docs/security.md as printed.
func TestSecurityDocSettings(t *testing.T) {
	block := iniBlock(t, "../docs/security.md", "## Settings")
	node := testenv.NewNode(t, testenv.NodeOptions{LBAgentINI: block})
	cfg, err := LoadConfig(Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir})
	if err != nil {
		t.Fatalf("docs/security.md settings: %v\n%s", err, block)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("10.0.0.6/32"), netip.MustParsePrefix("10.0.1.0/28")}
	if cfg.MaxConns != 4096 || cfg.MaxConnsPerIP != 16 || cfg.RatePerIP != 100 || cfg.ReadTimeout != 2*time.Second ||
		cfg.IdleTimeout != 10*time.Second || cfg.StatusToken != "6f1c0e5b2d7a4c9e8b3f" || len(cfg.Balancers) != 3 {
		t.Fatalf("got %+v", cfg)
	}
	for i, p := range want {
		if cfg.Balancers[i] != p {
			t.Errorf("balancer %d: %v; want %v", i, cfg.Balancers[i], p)
		}
	}
	ac, err := agentcheck.LoadConfig(cfg.Settings, cfg.Health)
	if err != nil || len(ac.Balancers) != 3 || !ac.IsBalancer(netip.MustParseAddr("10.0.1.7")) || ac.IsBalancer(netip.MustParseAddr("10.0.1.16")) {
		t.Fatalf("agent-check config %+v, %v; want the same balancers", ac, err)
	}
	if l := cfg.Limits(); l.Max != 4096 || l.PerIP != 16 || l.RatePerIP != 100 {
		t.Errorf("limits %+v", l)
	}
}

func TestPublicPortSettingsErrors(t *testing.T) {
	tests := []struct{ ini, want string }{
		{"[lbagent]\nmax-connections = 5\n", "max-connections"},
		{"[lbagent]\nmax-connections-per-ip = many\n", "max-connections-per-ip"},
		{"[lbagent]\nmax-rate-per-ip = -3\n", "max-rate-per-ip"},
		{"[lbagent]\nread-timeout = 10ms\n", "read-timeout"},
		{"[lbagent]\nidle-timeout = 1h\n", "idle-timeout"},
		{"[lbagent]\nstatus-token = short\n", "status-token"},
		{"[agent-check]\nbalancers = 10.0.0.300\n", "balancers"},
		{"[agent-check]\nbalancers = 10.0.0.0/33\n", "balancers"},
	}
	for _, tt := range tests {
		node := testenv.NewNode(t, testenv.NodeOptions{LBAgentINI: tt.ini})
		_, err := LoadConfig(Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v; want an error naming %s", tt.ini, err, tt.want)
		}
	}
	node := testenv.NewNode(t, testenv.NodeOptions{LBAgentINI: "[lbagent]\nmax-rate-per-ip = 0\n"})
	cfg, err := LoadConfig(Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir})
	if err != nil || cfg.RatePerIP != -1 {
		t.Errorf("max-rate-per-ip = 0: %d, %v; want the limit off (-1)", cfg.RatePerIP, err)
	}
}
