package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/sync/confsync"
)

// TestSyncPauseResume: lbagent sync pause creates [sync] pause-file (the guide's touch),
// resume removes it; twice is fine and says so; a pause file in a missing directory is an
// error naming it; --pause-file overrides the setting.
func TestSyncPauseResume(t *testing.T) {
	dir := t.TempDir()
	xroad := filepath.Join(dir, "etc")
	pause := filepath.Join(dir, "sync-disabled")
	if err := os.MkdirAll(filepath.Join(xroad, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(xroad, "conf.d", "node.ini"), []byte("[node]\ntype=slave\n\n[sync]\npause-file = "+pause+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args   []string
		code   int
		want   string
		exists bool
	}{
		{[]string{"sync", "pause", "--xroad-dir", xroad}, 0, "config sync paused (" + pause + " created)\n", true},
		{[]string{"sync", "pause", "--xroad-dir", xroad}, 0, "config sync already paused (" + pause + " exists)\n", true},
		{[]string{"sync", "resume", "--xroad-dir", xroad}, 0, "config sync resumed (" + pause + " removed)\n", false},
		{[]string{"sync", "resume", "--xroad-dir", xroad}, 0, "config sync was not paused (no " + pause + ")\n", false},
	}
	for _, s := range steps {
		code, out := capture(t, s.args...)
		if code != s.code || out != s.want {
			t.Errorf("lbagent %s: exit %d %q; want %d %q", strings.Join(s.args, " "), code, out, s.code, s.want)
		}
		if _, err := os.Stat(pause); (err == nil) != s.exists {
			t.Errorf("after lbagent %s: pause file exists %v; want %v", strings.Join(s.args, " "), err == nil, s.exists)
		}
	}
	// The daemon's worker sees the same file.
	c, err := confsync.LoadConfig(xroad)
	if err != nil || c.PauseFile != pause {
		t.Errorf("confsync.LoadConfig pause file %q, %v; want %q", c.PauseFile, err, pause)
	}
	missing := filepath.Join(dir, "no-such-dir", "sync-disabled")
	code, out := capture(t, "sync", "pause", "--xroad-dir", xroad, "--pause-file", missing)
	if code != 1 || !strings.Contains(out, missing) {
		t.Errorf("pause in a missing directory: exit %d %q; want 1 naming %s", code, out, missing)
	}
	code, out = capture(t, "sync", "pause", "--xroad-dir", xroad, "--pause-fil", pause)
	if code == 0 || !strings.Contains(out, "unknown flag: --pause-fil") {
		t.Errorf("typo in a flag: exit %d %q; want an error", code, out)
	}
}
