package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// capture runs lbagent with args and returns its exit code and what it wrote to stdout and
// stderr.
func capture(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	code := run(args)
	os.Stdout, os.Stderr = stdout, stderr
	w.Close()
	out, _ := io.ReadAll(r)
	return code, string(out)
}

// TestCheckConfigSummary: --check-config prints every port, peer and the primary, and
// warnings; the README's own lbagent.ini example loads as printed.
func TestCheckConfigSummary(t *testing.T) {
	n := testenv.NewNode(t, testenv.NodeOptions{Role: "slave", HealthPort: -1,
		LocalINI: "; X-Road's rules: a comment after whitespace\n",
		LBAgentINI: "[lbagent]\ncheck-timeout = 5s ; a check that takes longer fails\n" +
			"maintenance-state-file =    ; set a path to keep maintenance mode across restarts\n" +
			"[agent-check]\nlisten = 127.0.0.1:5589 ; default\nbalancers = 127.0.0.5\n",
		NodeINI: "[sync]\nprimary = 127.0.0.9:2222 ; the primary's sshd\n"})
	code, out := capture(t, "run", "--xroad-dir", n.XRoadDir, "--ocsp-cache-dir", n.OCSPDir, "--check-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{
		"configuration OK: role secondary, 1 warning(s)\n",
		"  health port:      disabled ([proxy] health-check-port = 0)\n",
		"  agent-check port: 127.0.0.1:5589 (maintenance word drain)\n",
		"  admin port:       127.0.0.1:5566 (loopback peers only)\n",
		"  balancers:        127.0.0.5/32\n",
		"  primary:          127.0.0.9:2222 (ssh as xroad-slave, /etc/xroad/ -> /etc/xroad/ every 1s)\n",
		"  checks:           timeout 5s, success-ttl 2s, failure-ttl 30s; tcp: none\n",
		"  maintenance:      in memory (off after a restart, as X-Road)\n",
		"warning: [proxy] health-check-port = 0: the balancer cannot probe this node\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckConfigValidatesEveryPart(t *testing.T) {
	tests := []struct {
		name     string
		node     testenv.NodeOptions
		wantCode int
		want     string
	}{
		{"good", testenv.NodeOptions{Role: "slave", LBAgentINI: "[agent-check]\nlisten = 127.0.0.1:5589\n"}, 0,
			"configuration OK: role secondary"},
		{"bad [lbagent]", testenv.NodeOptions{LBAgentINI: "[lbagent]\nfailure-ttl = often\n"}, 1,
			`conf.d/lbagent.ini:2: [lbagent] failure-ttl = "often": want a duration from 1ms to 1h`},
		{"typo in a key", testenv.NodeOptions{LBAgentINI: "[lbagent]\ncheck-timout = 5s\n"}, 1,
			`conf.d/lbagent.ini:2: unknown key "check-timout" in [lbagent]; did you mean "check-timeout"?`},
		{"typo in node.ini's type", testenv.NodeOptions{Role: "slvae"}, 1,
			`conf.d/node.ini:2: [node] type = "slvae": want master, slave, primary, secondary or standalone (did you mean slave?)`},
		{"line without =", testenv.NodeOptions{LocalINI: "health-check-port 32001\n"}, 1,
			`conf.d/local.ini:5: "health-check-port 32001" is not key = value`},
		{"bad [agent-check]", testenv.NodeOptions{LBAgentINI: "[agent-check]\nmaintenance-word = pause\n"}, 1,
			`[agent-check] maintenance-word = "pause": want drain or maint`},
		{"bad [sync] on a secondary", testenv.NodeOptions{Role: "slave", NodeINI: "[sync]\nprimary = 127.0.0.1:22\ninterval = sometimes\n"}, 1,
			"[sync] interval"},
		{"bad [replication] on a secondary", testenv.NodeOptions{Role: "slave", LBAgentINI: "[replication]\nlag-limit = lots\n"}, 1,
			"[replication] lag-limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.node.HealthPort = -1
			n := testenv.NewNode(t, tt.node)
			code, out := capture(t, "run", "--xroad-dir", n.XRoadDir, "--ocsp-cache-dir", n.OCSPDir, "--check-config")
			if code != tt.wantCode || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, out, tt.wantCode, tt.want)
			}
			if tt.wantCode != 0 && (strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.HasPrefix(out, "lbagent: ")) {
				t.Errorf("error output %q; want one line starting with 'lbagent: '", out)
			}
		})
	}
}
