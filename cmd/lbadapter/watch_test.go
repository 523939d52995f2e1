package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWatchUsage(t *testing.T) {
	dir := t.TempDir()
	haproxyOnly := filepath.Join(dir, "cluster.ini")
	if err := os.WriteFile(haproxyOnly, []byte("[balancer]\ntype = haproxy\nruntime-api = /nonexistent.sock\nbackend = b\n"+
		"[node \"ss1\"]\naddress = 127.0.0.2\nrole = primary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", haproxyOnly, "watch", "--once"}, 2, "has no balancer of type nginx: nothing to watch"},
		{[]string{"--config", haproxyOnly, "watch", "--fall", "0"}, 2, "--interval, --fall and --rise must be positive"},
		{[]string{"--config", haproxyOnly, "watch", "--source", "nowhere"}, 2, `--source "nowhere": want an IP address of this host`},
		{[]string{"--config", haproxyOnly, "watch", "--log-format", "xml"}, 2, `--log-format "xml": want json or console`},
		{[]string{"--config", haproxyOnly, "watch", "extra"}, 2, "unknown command"},
	} {
		var out, errb bytes.Buffer
		code := run(tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.want) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
	}
}

func TestWatchHelpNamesEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"watch", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("watch --help: exit %d: %s", code, errb.String())
	}
	for _, flag := range []string{"--interval", "--fall", "--rise", "--once", "--source", "--log-format", "--config"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("watch --help lacks %s:\n%s", flag, out.String())
		}
	}
}
