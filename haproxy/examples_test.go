package haproxy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// The examples keep the settings the operator documentation relies on. (Every example is
// loaded with haproxy -c by internal/docsblocks' TestPrintedConfigLoads.)
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("examples", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, want := range []string{"bind :5500", "bind :5577", "option httpchk", "check port 5588 inter 2s fall 3 rise 2",
		"agent-check agent-port 5589", "on-marked-down shutdown-sessions", "server-state-file",
		"load-server-state-from-file global", "level admin", "backend xroad\n",
		"server ss1  10.0.0.11", "server ss2  10.0.0.12", "server ss3  10.0.0.13"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("examples/haproxy.cfg lacks %q", want)
		}
	}
}

func TestExampleLuaConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("examples", "haproxy-lua.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lua-load /usr/share/lbkit/haproxy/lbkit.lua", "setenv LBKIT_AGENT_PORT 5588",
		"setenv LBKIT_BACKENDS   xroad", "backend xroad\n", "server ss2  10.0.0.12"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("examples/haproxy-lua.cfg lacks %q", want)
		}
	}
}

// TestExampleFirstStart: on a fresh machine the server-state file does not exist and HAProxy
// warns; the command the example's comment gives creates it so that no warning is left.
func TestExampleFirstStart(t *testing.T) {
	bin := testenv.Require(t, "haproxy")
	for _, name := range []string{"haproxy.cfg", "haproxy-lua.cfg"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("examples", name))
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`(?m)^\s*#.*\s(echo 1 > /var/lib/haproxy/server-state)\s*(\(|$)`).FindStringSubmatch(string(b))
			if m == nil {
				t.Fatalf("examples/%s does not say how to create the server-state file before the first start", name)
			}
			lua, err := filepath.Abs(filepath.Join("lua", "lbkit.lua"))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			move := strings.NewReplacer("/run/haproxy/", dir+"/", "/var/lib/haproxy/", dir+"/",
				"/usr/share/lbkit/haproxy/lbkit.lua", lua)
			path := filepath.Join(dir, "haproxy.cfg")
			if err := os.WriteFile(path, []byte(move.Replace(string(b))), 0o600); err != nil {
				t.Fatal(err)
			}
			check := func() string {
				out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput()
				if err != nil {
					t.Fatalf("haproxy -c: %v\n%s", err, out)
				}
				return string(out)
			}
			if out := check(); !strings.Contains(out, "Can't open global server state file") {
				t.Errorf("without the state file haproxy -c says:\n%s\nwant the warning the docs name", out)
			}
			if out, err := exec.Command("sh", "-c", move.Replace(m[1])).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", m[1], err, out)
			}
			if out := check(); strings.Contains(out, "WARNING") {
				t.Errorf("after %q haproxy -c still warns:\n%s", m[1], out)
			}
		})
	}
}
