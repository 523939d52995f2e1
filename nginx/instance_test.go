package nginx

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestErrorLine(t *testing.T) {
	out := "2026/11/30 10:50:01 [emerg] 25787#25787: invalid parameter \"max_fails=many\" in /tmp/x.servers:5\n" +
		"nginx: configuration file /tmp/bad.conf test failed\n"
	if got, want := errorLine([]byte(out)), `nginx: [emerg] invalid parameter "max_fails=many" in /tmp/x.servers:5`; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if got := errorLine([]byte("something else\n")); got != "something else" {
		t.Errorf("got %q", got)
	}
}

func TestMainDirectives(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nginx.conf")
	text := "user www-data;\npid /run/x.pid; # the master\nworker_shutdown_timeout 1m30s;\n" +
		"events { }\nhttp { server { pid /not/main.pid; } }\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	in := Instance{Conf: conf}
	if p, err := in.PIDFilePath(); err != nil || p != "/run/x.pid" {
		t.Errorf("pid: got %q, %v", p, err)
	}
	if d := in.ShutdownTimeout(); d != 90*time.Second {
		t.Errorf("worker_shutdown_timeout: got %s", d)
	}
	if p, _ := (Instance{Conf: conf, PIDFile: "/run/y.pid"}).PIDFilePath(); p != "/run/y.pid" {
		t.Errorf("pid-file override: got %q", p)
	}
	if err := os.WriteFile(conf, []byte("events {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, _ := in.PIDFilePath(); p != DefaultPIDFile {
		t.Errorf("no pid directive: got %q; want %s", p, DefaultPIDFile)
	}
}
