package settings

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLbagentInvalid reads testdata/lbagent/invalid-X.ini as conf.d/lbagent.ini (as
// conf.d/node.ini when X starts with "node-") and expects exactly the error in invalid-X.err.
func TestLbagentInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/lbagent/invalid-*.ini")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".ini")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".ini") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			path := "conf.d/lbagent.ini"
			if strings.HasPrefix(name, "invalid-node-") {
				path = "conf.d/node.ini"
			}
			_, err = ParseLbagent(path, data)
			if err == nil {
				t.Fatalf("accepted %s; want error %q", f, want)
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Errorf("got  %q\nwant %q", got, strings.TrimSpace(string(want)))
			}
			var se *Error
			if !errors.As(err, &se) || se.Path != path {
				t.Errorf("error %T does not name the file %s", err, path)
			}
		})
	}
}

// TestLbagentValid: our rules on files that must load, and what they hold.
func TestLbagentValid(t *testing.T) {
	const readme = `[lbagent]
check-timeout = 5s ; a check that takes longer fails
success-ttl = 2s   # a pass is kept this long
failure-ttl = 30s
maintenance-state-file =    ; set a path to keep maintenance mode across restarts

[agent-check]
listen = 0.0.0.0:5589 ; default
maintenance-word = drain

[replication]
lag-limit = ; no limit: lag is only a warning
`
	s, err := ParseLbagent("conf.d/lbagent.ini", []byte(readme))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ section, key, want string }{
		{"lbagent", "check-timeout", "5s"},
		{"lbagent", "success-ttl", "2s"},
		{"lbagent", "maintenance-state-file", ""},
		{"agent-check", "listen", "0.0.0.0:5589"},
		{"replication", "lag-limit", ""},
	} {
		if got := s.String(c.section, c.key, ""); got != c.want {
			t.Errorf("[%s] %s = %q; want %q", c.section, c.key, got, c.want)
		}
	}
	if !s.Has("lbagent", "maintenance-state-file") {
		t.Error("an empty value is still set (agent-check's listen = off relies on it)")
	}
	if d, err := s.Duration("lbagent", "check-timeout", 0); d != 5*time.Second || err != nil {
		t.Errorf("check-timeout %v, %v; want 5s", d, err)
	}

	// Names are case-insensitive; quotes keep comment characters; "\" continues a value.
	s, err = ParseLbagent("conf.d/node.ini", []byte("[Node]\nType = SLAVE\n[LBAGENT]\nStatus-Token = \"0123456789abcdef ; #\" ; note\n"+
		"tcp-checks = proxy=127.0.0.1:5500, \\\n  signer=127.0.0.1:5558\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.NodeType(); got != "secondary" {
		t.Errorf("node type %q; want secondary", got)
	}
	if got := s.String("lbagent", "status-token", ""); got != "0123456789abcdef ; #" {
		t.Errorf("status-token %q", got)
	}
	if got := s.String("lbagent", "tcp-checks", ""); got != "proxy=127.0.0.1:5500,\nsigner=127.0.0.1:5558" {
		t.Errorf("tcp-checks %q", got)
	}
}

// TestLoadLbagentOrder: node.ini wins over lbagent.ini; errors name the file that set the key.
func TestLoadLbagentOrder(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "conf.d/lbagent.ini", "[lbagent]\ncheck-timeout = 3s\nfailure-ttl = 10s\n")
	write(t, dir, "conf.d/node.ini", "[node]\ntype=slave\n[lbagent]\nfailure-ttl = 20s\n")
	s, err := LoadLbagent(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Duration("lbagent", "check-timeout", 0); d != 3*time.Second {
		t.Errorf("check-timeout %v; want lbagent.ini's 3s", d)
	}
	if d, _ := s.Duration("lbagent", "failure-ttl", 0); d != 20*time.Second {
		t.Errorf("failure-ttl %v; want node.ini's 20s", d)
	}
	want := filepath.Join(dir, "conf.d/node.ini") + `:4: [lbagent] failure-ttl = "20s": test`
	if err := s.Error("lbagent", "failure-ttl", "test"); err.Error() != want {
		t.Errorf("got %q; want %q", err, want)
	}
	if s, err := LoadLbagent(t.TempDir()); err != nil || s.NodeType() != "standalone" || len(s.Files()) != 0 {
		t.Errorf("no files: %v, %v; want standalone defaults", s, err)
	}
}

// TestXRoadRules: X-Road's files as Apache Commons Configuration's INIConfiguration reads them.
func TestXRoadRules(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"inline comment after whitespace", `health-check-port = 5588 ; probed by the balancer`, "5588"},
		{"hash comment", `health-check-port = 5588 # probed`, "5588"},
		{"no whitespace: not a comment", `v = a;b#c`, "a;b#c"},
		{"a comment character starting the value is kept", `v = ; note`, "; note"},
		{"double quotes keep comment characters", `v = "a ; b" ; note`, "a ; b"},
		{"escaped quote", `v = 'it\'s'`, "it's"},
		{"other backslashes are kept", `v = "c:\dir\"x"`, `c:\dir"x`},
		{"colon separator", `v: 5588`, "5588"},
		{"separator before the quote", `v = "a=b:c"`, "a=b:c"},
		{"continued line", "v = one \\\n    two ; note", "one\ntwo"},
		{"continued quoted line", "v = \"one\" \\\ntwo", "one\ntwo"},
		{"backslash without whitespace does not continue", "v = a\\\nw = b", `a\`},
		{"empty", `v =`, ""},
		{"whitespace trimmed", "v =   x y   ", "x y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := ParseXRoad("local.ini", []byte("[proxy]\n"+tt.line+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			key := "v"
			if strings.HasPrefix(tt.line, "health-check-port") {
				key = "health-check-port"
			}
			v, _ := x.Get("proxy", key)
			if v.Value != tt.want {
				t.Errorf("%q: got %q; want %q", tt.line, v.Value, tt.want)
			}
		})
	}
}

// TestXRoadErrors: malformed lines in X-Road's files are errors naming the file and line
// (X-Road itself would silently read them as something else); unknown keys are not.
func TestXRoadErrors(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"no separator", "[proxy]\nhealth-check-port 32001\n", `local.ini:2: "health-check-port 32001" is not key = value`},
		{"unclosed", "[proxy]\nhealth-check-port=5588\n[signer\n", `local.ini:3: unclosed section header "[signer"`},
		{"binary", "[proxy]\n\x00\x01", `local.ini:2: not a text file (NUL byte)`},
		{"not UTF-8", "[proxy]\nx = \xff\n", `local.ini:2: not a text file (not UTF-8)`},
	}
	for _, tt := range tests {
		_, err := ParseXRoad("local.ini", []byte(tt.content))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: got %v; want %q", tt.name, err, tt.want)
		}
	}
	x, err := ParseXRoad("local.ini", []byte("[proxy]\nno-such-key = 1\n[no-such-section]\nk=v\n"))
	if err != nil {
		t.Fatalf("unknown keys must be ignored, as X-Road does: %v", err)
	}
	if _, err := x.Int("proxy", "no-such-key", 0, 0, 0); err == nil || err.Error() != `local.ini:2: [proxy] no-such-key = "1": want 0 to 0` {
		t.Errorf("range error %v", err)
	}
}

// TestLoadXRoadOrder: packaged files by name, then override-*.ini, then local.ini; within one
// file a repeated key's first value counts; lbkit's own files are not X-Road properties.
func TestLoadXRoadOrder(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "conf.d/proxy.ini", "[proxy]\na=proxy\nb=proxy\nc=proxy\nd=proxy\n")
	write(t, dir, "conf.d/override-ee.ini", "[proxy]\nb=override\nc=override\nd=override\n")
	write(t, dir, "conf.d/local.ini", "[proxy]\nc=local\nc=local-again\n")
	write(t, dir, "conf.d/node.ini", "[proxy]\nd=node\n")
	write(t, dir, "conf.d/lbagent.ini", "[proxy]\nd=lbagent\n")
	x, err := LoadXRoad(dir)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"a": "proxy", "b": "override", "c": "local", "d": "override"} {
		if got := x.String("proxy", k, ""); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	var names []string
	for _, f := range x.Files() {
		names = append(names, filepath.Base(f))
	}
	if got := strings.Join(names, " "); got != "proxy.ini override-ee.ini local.ini" {
		t.Errorf("files %s", got)
	}
}

func TestNearest(t *testing.T) {
	known := []string{"check-timeout", "success-ttl", "failure-ttl", "listen", "haproxy-socket"}
	for in, want := range map[string]string{"check-timout": "check-timeout", "sucess-ttl": "success-ttl",
		"listn": "listen", "haproxy-sock": "haproxy-socket", "Check-Timeout": "check-timeout", "colour": ""} {
		if got := nearest(in, known); got != want {
			t.Errorf("nearest(%q) = %q; want %q", in, got, want)
		}
	}
}

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
