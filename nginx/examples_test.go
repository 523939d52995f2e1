package nginx_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
	"github.com/xroad-lb/lbkit/testenv"
)

// TestExamples: both example nginx configurations pass nginx -t of the nginx installed here
// (with their paths moved into a temporary directory and the Lua module of this repository),
// the servers files parse, and the example cluster.ini loads with a line for every node.
func TestExamples(t *testing.T) {
	bin := testenv.Require(t, "nginx")
	lua, err := filepath.Abs("lua")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := lbadapters.Load("examples/cluster.ini")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range cfg.Balancers {
		f, _, err := nginx.ReadFile(filepath.Join("examples", filepath.Base(b.ServersFile)))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range cfg.Nodes {
			if f.Find(n.Address, b.Port) == nil {
				t.Errorf("%s has no line for %s:%d", b.ServersFile, n.Address, b.Port)
			}
		}
	}
	for _, name := range []string{"nginx-stream.conf", "nginx-http-lua.conf"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, s := range []string{"xroad-5500.servers", "xroad-5577.servers"} {
				b, err := os.ReadFile(filepath.Join("examples", s))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, s), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(filepath.Join("examples", name))
			if err != nil {
				t.Fatal(err)
			}
			conf := strings.NewReplacer("/etc/nginx/lbkit/", dir+"/", "/run/nginx.pid", dir+"/nginx.pid",
				"/var/log/nginx/", dir+"/", "/usr/share/lbkit/lua", lua).Replace(string(b))
			path := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := (nginx.Instance{Bin: bin, Conf: path}).Test(context.Background()); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
}

// TestDocsShowTheExamples: every nginx block of docs/nginx.md is one of the example files,
// exactly, and every ini block loads as a cluster config.
func TestDocsShowTheExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/nginx.md")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	ents, _ := os.ReadDir("examples")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("examples", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	shown := map[string]bool{}
	for _, lang := range []string{"nginx", "ini"} {
		parts := strings.Split(string(doc), "```"+lang+"\n")
		for _, p := range parts[1:] {
			block, _, _ := strings.Cut(p, "```")
			found := ""
			for name, text := range files {
				if text == block {
					found = name
				}
			}
			if lang == "ini" {
				if _, err := lbadapters.Parse([]byte(block)); err != nil {
					t.Errorf("docs/nginx.md ini block does not load: %v\n%s", err, block)
				}
			} else if found == "" {
				t.Errorf("docs/nginx.md shows an nginx block that is not an example file:\n%s", block)
			}
			shown[found] = true
		}
	}
	for _, want := range []string{"nginx-stream.conf", "nginx-http-lua.conf", "cluster.ini"} {
		if !shown[want] {
			t.Errorf("docs/nginx.md does not show examples/%s", want)
		}
	}
}
