package main

import (
	"os"
	"strconv"
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
		// durations that cannot work are refused before anything is contacted
		{"db", "status", "--connect-timeout", "-1s"},
		{"db", "status", "--connect-timeout", "0"},
		{"db", "wait-caught-up", "--timeout", "-1s"},
		{"db", "wait-caught-up", "--interval", "0"},
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

// TestCertsNodeRefusesBadNames: the node name becomes a CN, a PostgreSQL role and a
// directory; "bad name/../x" was accepted (issue 12, bug 8). Nothing is written.
func TestCertsNodeRefusesBadNames(t *testing.T) {
	pki := t.TempDir()
	if code, out := capture(t, "certs", "ca", "--out", pki); code != 0 {
		t.Fatalf("certs ca: exit %d\n%s", code, out)
	}
	before, _ := os.ReadDir(pki)
	for _, name := range []string{"bad name/../x", "../../etc", "pg_monitor", "Replica1"} {
		code, out := capture(t, "certs", "node", "--ca-dir", pki, "--name", name)
		if code != 2 || !strings.Contains(out, "PostgreSQL role") || !strings.Contains(out, strconv.Quote(name)) {
			t.Errorf("certs node --name %q: exit %d\n%s\nwant exit 2 explaining the rule", name, code, out)
		}
	}
	if after, _ := os.ReadDir(pki); len(after) != len(before) {
		t.Errorf("refused names wrote into %s: %d entries, before %d", pki, len(after), len(before))
	}
}
