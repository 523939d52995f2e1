package nginx_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
)

// TestExamples: the servers files have a line for every node of the example cluster.ini on
// each balancer's port. (Every example is loaded with nginx -t, and the servers files with
// ReadFile, by internal/docsblocks' TestPrintedConfigLoads.)
func TestExamples(t *testing.T) {
	cfg, err := lbadapters.Load("examples/cluster.ini")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Balancers) != 2 || len(cfg.Nodes) != 3 {
		t.Fatalf("examples/cluster.ini: %d balancers, %d nodes; want 2 and 3", len(cfg.Balancers), len(cfg.Nodes))
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
}

// TestDocsShowTheExamples: every nginx block of docs/nginx.md is one of the example files,
// exactly, and the doc shows each of them.
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
			if lang == "nginx" && found == "" {
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
