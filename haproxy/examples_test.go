package haproxy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// The example configuration is valid for the HAProxy installed here, and keeps the settings
// the operator documentation relies on.
func TestExampleConfig(t *testing.T) {
	bin := testenv.Require(t, "haproxy")
	b, err := os.ReadFile(filepath.Join("examples", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, want := range []string{"bind :5500", "bind :5577", "option httpchk", "check port 5588 inter 2s fall 3 rise 2",
		"agent-check agent-port 5589", "on-marked-down shutdown-sessions", "server-state-file",
		"load-server-state-from-file global", "level admin"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("examples/haproxy.cfg lacks %q", want)
		}
	}
	dir := t.TempDir()
	cfg = strings.NewReplacer("/run/haproxy/", dir+"/", "/var/lib/haproxy/", dir+"/").Replace(cfg)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

// The Lua example is valid for the HAProxy installed here with lbkit.lua of this repository.
func TestExampleLuaConfig(t *testing.T) {
	bin := testenv.Require(t, "haproxy")
	b, err := os.ReadFile(filepath.Join("examples", "haproxy-lua.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	lua, err := filepath.Abs(filepath.Join("lua", "lbkit.lua"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := strings.NewReplacer("/run/haproxy/", dir+"/", "/var/lib/haproxy/", dir+"/",
		"/usr/share/lbkit/haproxy/lbkit.lua", lua).Replace(string(b))
	for _, want := range []string{"lua-load " + lua, "setenv LBKIT_AGENT_PORT 5588", "setenv LBKIT_BACKENDS   xroad"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("examples/haproxy-lua.cfg lacks %q", want)
		}
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}
