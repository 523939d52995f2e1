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
			`[lbagent] failure-ttl = "often": want a positive duration`},
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
