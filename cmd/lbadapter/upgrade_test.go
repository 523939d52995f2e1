package main

import (
	"bytes"
	"context"
	"io"
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
		{[]string{"--command", "x", "--nodes", ",,"}, 2, `--nodes ",," names no node`},
		{[]string{"--command", "x", "--nodes", ""}, 2, `--nodes "" names no node`},
		{[]string{"--resume", "--nodes", ""}, 2, "take the plan from the state file"},
		{[]string{"--command", "x", "--poll", "0"}, 2, "--poll 0: want a positive duration"},
		{[]string{"--command", "x", "--poll", "-1s"}, 2, "--poll -1s: want a positive duration"},
		{[]string{"--command", "x", "--drain-timeout", "0"}, 2, "--drain-timeout 0: want a positive duration"},
		{[]string{"--command", "x", "--health-timeout", "-5m"}, 2, "--health-timeout -5m0s: want a positive duration"},
		{[]string{"--command", "x", "--enable-timeout", "0s"}, 2, "--enable-timeout 0: want a positive duration"},
		{[]string{"--command", "x", "--preflight-wait", "-5s"}, 2, "--preflight-wait -5s: want a positive duration"},
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

// TestUpgradeAbandon: an unfinished state refuses a new run and a resume of something else;
// --abandon keeps it aside and lists what is still drained and paused; then a resume has
// nothing to do.
func TestUpgradeAbandon(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cluster.ini")
	if err := os.WriteFile(cfg, []byte("[balancer]\ntype = haproxy\nruntime-api = "+filepath.Join(dir, "no.sock")+"\nbackend = b\n"+
		"[node \"ss1\"]\naddress = 127.0.0.1\nrole = primary\n[node \"ss2\"]\naddress = 127.0.0.2\nrole = secondary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state.json")
	st := &upgrade.State{Config: cfg, Options: upgrade.Options{Command: "up"}, Before: map[string]string{"ss1": "7.4.0-1", "ss2": "7.4.0-1"},
		Steps: []upgrade.Step{
			{Node: "ss2", Kind: upgrade.KindPauseReplay, Status: upgrade.Done},
			{Node: "ss2", Kind: upgrade.KindPauseSync, Status: upgrade.Done},
			{Node: "ss1", Kind: upgrade.KindDrain, Status: upgrade.Done},
			{Node: "ss1", Kind: upgrade.KindUpgrade, Status: upgrade.Failed, Error: "exit 100"},
			{Node: "ss1", Kind: upgrade.KindWaitHealthy, Status: upgrade.Pending},
		}}
	if err := st.Save(state); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--config", cfg, "upgrade", "--state", state, "--command", "up"}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "is unfinished") {
		t.Errorf("new run over an unfinished one: exit %d %q; want 2, refused", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"--config", cfg, "upgrade", "--state", state, "--abandon"}, &out, &errb); code != 0 {
		t.Fatalf("--abandon: exit %d %s", code, errb.String())
	}
	for _, want := range []string{"abandoned the upgrade started", state + ".abandoned",
		"still drained on every balancer: ss1", "serverconf replay still paused on: ss2", "config sync still paused on: ss2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--abandon output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file still there after --abandon: %v", err)
	}
	if _, err := upgrade.LoadState(state + ".abandoned"); err != nil {
		t.Errorf("abandoned state: %v", err)
	}
	errb.Reset()
	if code := run([]string{"--config", cfg, "upgrade", "--state", state, "--resume"}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "nothing to resume") {
		t.Errorf("--resume after --abandon: exit %d %q", code, errb.String())
	}
	// A state file that is not ours is an error, never overwritten.
	if err := os.WriteFile(state, []byte(`{"hello": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"--config", cfg, "upgrade", "--state", state, "--resume"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "not a state file of this lbadapter") {
		t.Errorf("--resume of a foreign file: exit %d %q", code, errb.String())
	}
	// Nor is a file that is not JSON at all (--state /etc/passwd).
	if err := os.WriteFile(state, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"--config", cfg, "upgrade", "--state", state, "--resume"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "not a state file of lbadapter upgrade") {
		t.Errorf("--resume of a text file: exit %d %q", code, errb.String())
	}
	if b, _ := os.ReadFile(state); string(b) != "root:x:0:0:root:/root:/bin/bash\n" {
		t.Errorf("the text file was changed: %q", b)
	}
}

// TestConfirm: only y or yes (any case) confirms; end of input or Ctrl-C is a no.
func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " yes \n": true, "n\n": false, "\n": false, "": false, "yep\n": false} {
		var out bytes.Buffer
		if got := confirm(context.Background(), strings.NewReader(in), &out, "Run?"); got != want || out.String() != "Run? [y/N] " {
			t.Errorf("answer %q: %v, prompt %q; want %v", in, got, out.String(), want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, w := io.Pipe() // never answers
	defer w.Close()
	if confirm(ctx, r, io.Discard, "Run?") {
		t.Error("a cancelled question confirmed")
	}
}
