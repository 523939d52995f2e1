package main

import (
	"strings"
	"testing"
)

// TestUsageErrorsExit2: bad flags, arguments and commands exit 2 in every command, as the
// docs say (issue 12, bug 8: "lbagent sync" exited 1 for a bad flag).
func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"sync", "--bogus"},
		{"sync", "--interval", "often"},
		{"sync", "extra-argument"},
		{"db", "status", "--nope"},
		{"db", "status", "-o", "yaml"},
		{"db", "pause", "now"},
		{"db", "nosuch"},
		{"certs", "node", "--nme", "x"},
		{"run", "--check-confg"},
		{"nosuch"},
	} {
		code, out := capture(t, args...)
		if code != 2 {
			t.Errorf("lbagent %s: exit %d; want 2\n%s", strings.Join(args, " "), code, out)
		}
		if !strings.HasPrefix(out, "lbagent: ") || strings.Count(out, "\n") != 1 {
			t.Errorf("lbagent %s: output %q; want one line starting \"lbagent: \"", strings.Join(args, " "), out)
		}
	}
}
