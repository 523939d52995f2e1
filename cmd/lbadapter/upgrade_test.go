package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/lbadapters/upgrade"
)

// TestUpgradeUsage: bad flags and combinations are usage errors (exit 2) on one line, before
// anything is touched; a preflight against a cluster that is not there refuses (exit 1) and
// lists what to fix, one line each.
func TestUpgradeUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cluster.ini")
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("[balancer]\ntype = haproxy\nruntime-api = "+filepath.Join(dir, "no.sock")+"\nbackend = b\n"+
		"[ssh]\nknown-hosts = "+known+"\nidentity = "+filepath.Join(dir, "no-key")+"\n"+
		"[node \"ss1\"]\naddress = 127.0.0.1\nrole = primary\nhealth-port = 1\nssh = 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state.json")
	base := []string{"--config", cfg, "upgrade", "--state", state}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "--command is required"},
		{[]string{"--command", " "}, 2, "--command is required"},
		{[]string{"--resume", "--abandon"}, 2, "--resume and --abandon exclude each other"},
		{[]string{"--resume", "--command", "x"}, 2, "take the plan from the state file"},
		{[]string{"--abandon", "--dry-run"}, 2, "take the plan from the state file"},
		{[]string{"--resume"}, 2, "nothing to resume: no unfinished upgrade"},
		{[]string{"--abandon"}, 2, "nothing to abandon: no unfinished upgrade"},
		{[]string{"--command", "x", "extra"}, 2, "upgrade takes no arguments"},
		{[]string{"--comand", "x"}, 2, "unknown flag: --comand"},
		{[]string{"--command", "x", "--nodes", "ss9"}, 2, `unknown node "ss9"`},
		{[]string{"--command", "x", "--nodes", "ss1,ss1"}, 2, "--nodes lists ss1 twice"},
		{[]string{"--command", "x", "--dry-run", "--preflight-wait", "0"}, 1, "the preflight refused the upgrade: nothing was changed"},
	} {
		var out, errb bytes.Buffer
		code := run(append(append([]string{}, base...), tt.args...), &out, &errb)
		last := strings.TrimSpace(errb.String())
		if i := strings.LastIndex(last, "\n"); i >= 0 {
			last = last[i+1:]
		}
		if code != tt.code || !strings.Contains(last, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and a last line with %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
		if tt.code == 1 {
			for _, want := range []string{"preflight failed: the cluster is not ready for an upgrade:\n",
				"\n  - ss1 [balancer]: HAProxy runtime API ", "\n  - ss1: agent ss1 unreachable at http://127.0.0.1:1/status", "\n  - ss1: over SSH: "} {
				if !strings.Contains(errb.String(), want) {
					t.Errorf("preflight output lacks %q:\n%s", want, errb.String())
				}
			}
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Fatalf("%v wrote the state file (%v)", tt.args, err)
		}
	}
}

func TestUpgradeHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"upgrade", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("upgrade --help: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"--command", "--nodes", "--offline", "--dry-run", "--resume", "--abandon", "--yes", "--state",
		upgrade.DefaultStatePath, "7.2.1", "7.2.2", "7.2.3", "7.1", "Exit codes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("upgrade --help lacks %q", want)
		}
	}
}
