package docsblocks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/internal/docsblocks"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
	"github.com/xroad-lb/lbkit/testenv"
)

// root is the repository root, seen from this package.
const root = "../.."

// knownLoaderFailures are printed blocks known not to load, keyed by the file and the block's
// first line (knownKey), each with the reason. It is empty: every printed block loads. The
// test fails for an entry whose block now loads and for an entry that names no block, so the
// list cannot go stale quietly.
var knownLoaderFailures = map[string]string{}

// knownKey is a block's key in knownLoaderFailures: "FILE: FIRST LINE".
func knownKey(b docsblocks.Block) string {
	first, _, _ := strings.Cut(b.Text, "\n")
	return b.File + ": " + strings.TrimSpace(first)
}

// wantSkipMarkers is the number of `<!-- docs-test: skip: REASON -->` markers in the docs.
// A new skip marker must be counted here too, so it is seen in review.
const wantSkipMarkers = 0

// TestPrintedConfigLoads: every config block printed in README.md, docs/*.md and the example
// folders (examples/, haproxy/examples/, nginx/examples/) loads exactly as printed with the
// loader its kind has in the product (see load). Failures name file:line.
func TestPrintedConfigLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("loads blocks with lbagent, haproxy and nginx")
	}
	blocks, err := docsblocks.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	e := newLoaders(t)
	kinds := map[docsblocks.Kind]int{}
	skips := 0
	seen := map[string]bool{}
	for _, b := range blocks {
		kinds[b.Kind]++
		if b.Skip != "" {
			skips++
			t.Logf("%s: not loaded (marked): %s", b.Where(), b.Skip)
			continue
		}
		err := e.load(t, b)
		known, isKnown := knownLoaderFailures[knownKey(b)]
		if isKnown {
			if seen[knownKey(b)] {
				t.Errorf("%s: knownLoaderFailures key %q matches two blocks", b.Where(), knownKey(b))
			}
			seen[knownKey(b)] = true
		}
		switch {
		case err != nil && isKnown:
			t.Logf("%s: known failure until issue 12's settings loader (%s): %v", b.Where(), known, err)
		case err != nil:
			t.Errorf("%s: %s block does not load as printed: %v", b.Where(), b.Kind, err)
		case isKnown:
			t.Errorf("%s: loads now: remove it from knownLoaderFailures", b.Where())
		}
	}
	for where := range knownLoaderFailures {
		if !seen[where] {
			t.Errorf("knownLoaderFailures names %q, which is no block any more", where)
		}
	}
	if skips != wantSkipMarkers {
		t.Errorf("%d skip markers in the docs; wantSkipMarkers says %d", skips, wantSkipMarkers)
	}
	// The extractor must keep finding what is there (at least these many of each kind).
	for kind, least := range map[docsblocks.Kind]int{docsblocks.ClusterINI: 6, docsblocks.LBAgentINI: 4,
		docsblocks.HAProxy: 2, docsblocks.Nginx: 4, docsblocks.NginxServers: 3, docsblocks.JSON: 1, docsblocks.NotConfig: 10} {
		if kinds[kind] < least {
			t.Errorf("found %d %s blocks; want at least %d", kinds[kind], kind, least)
		}
	}
	t.Logf("blocks by kind: %v", kinds)
}

// loaders holds what the loaders need: the lbagent binary, haproxy and nginx.
type loaders struct {
	lbagent, haproxy, nginx string
	lbkitLua, nginxLua      string // this repository's Lua files
}

func newLoaders(t *testing.T) *loaders {
	t.Helper()
	bin, err := testenv.BuildLBAgent(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	return &loaders{lbagent: bin, haproxy: testenv.Require(t, "haproxy"), nginx: testenv.Require(t, "nginx"),
		lbkitLua: abs("haproxy/lua/lbkit.lua"), nginxLua: abs("nginx/lua")}
}

// load loads one block with the product's loader for its kind. This is the one place that
// knows the loaders; repoint it when a loader changes:
//   - lbagent.ini, node.ini, X-Road's local.ini: `lbagent run --check-config` on a generated
//     X-Road node (a secondary, so [replication] and [sync] are read too) with the block as
//     that file: the daemon's own start-up reading, every part included.
//   - cluster.ini: lbadapters.Parse, lbadapter's reader.
//   - haproxy.cfg: `haproxy -c`, warnings included; nginx.conf: `nginx -t`, warnings included;
//     a servers file: nginx.ReadFile (lbadapter's reader), then `nginx -t` with it included
//     by a stream upstream. Paths are moved first (rewrite).
//   - json: encoding/json.
func (l *loaders) load(t *testing.T, b docsblocks.Block) error {
	switch b.Kind {
	case docsblocks.LBAgentINI:
		return l.checkConfig(t, "lbagent.ini", b.Text)
	case docsblocks.NodeINI:
		return l.checkConfig(t, "node.ini", b.Text)
	case docsblocks.LocalINI:
		return l.checkConfig(t, "local.ini", b.Text)
	case docsblocks.ClusterINI:
		_, err := lbadapters.Parse([]byte(b.Text))
		return err
	case docsblocks.HAProxy:
		return l.haproxyCheck(t, b)
	case docsblocks.Nginx:
		return l.nginxTest(t, b, b.Text)
	case docsblocks.NginxServers:
		return l.serversFile(t, b)
	case docsblocks.JSON:
		var v any
		return json.Unmarshal([]byte(b.Text), &v)
	case docsblocks.NotConfig:
		return nil
	case docsblocks.Unlabelled:
		hint := ""
		if g := docsblocks.Guess(b.Text); g != "" {
			hint = fmt.Sprintf(" (it looks like %s)", g)
		}
		return fmt.Errorf("a fence without a language%s: label it (ini, haproxy, nginx, json; or %s for what is not a config)",
			hint, strings.Join(docsblocks.NotConfigLangs, ", "))
	}
	return fmt.Errorf("language %q: no loader for %s blocks (label it %s if it is not a config)",
		b.Lang, b.Kind, strings.Join(docsblocks.NotConfigLangs, ", "))
}

// checkConfig writes text as conf.d/<name> of a generated secondary and runs
// `lbagent run --check-config` on it.
func (l *loaders) checkConfig(t *testing.T, name, text string) error {
	node := testenv.NewNode(t, testenv.NodeOptions{Role: "slave"})
	if err := os.WriteFile(filepath.Join(node.XRoadDir, "conf.d", name), []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(l.lbagent, "run", "--check-config", "--xroad-dir", node.XRoadDir,
		"--ocsp-cache-dir", node.OCSPDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lbagent run --check-config: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// rewrite moves what a printed config puts under /run, /var and /etc into dir, points the
// Lua paths at this repository's files and binds listeners to 127.0.0.1. Nothing else
// changes. The printed HAProxy configs need the server-state file; it is created as
// docs/haproxy.md tells (a file holding the format version, "1").
func (l *loaders) rewrite(t *testing.T, text, dir string) string {
	t.Helper()
	text = strings.NewReplacer(
		"/run/haproxy/", dir+"/",
		"/var/lib/haproxy/", dir+"/",
		"/usr/share/lbkit/haproxy/lbkit.lua", l.lbkitLua,
		"/usr/share/lbkit/lua", l.nginxLua,
		"/etc/nginx/lbkit/", dir+"/",
		"/run/nginx.pid", dir+"/nginx.pid",
		"/var/log/nginx/", dir+"/",
	).Replace(text)
	text = regexp.MustCompile(`(?m)^(\s*bind\s+):(\d+)`).ReplaceAllString(text, "${1}127.0.0.1:$2")
	text = regexp.MustCompile(`(?m)^(\s*listen\s+)(\d+)(\s*;)`).ReplaceAllString(text, "${1}127.0.0.1:$2$3")
	if err := os.WriteFile(filepath.Join(dir, "server-state"), []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"xroad-5500.servers", "xroad-5577.servers"} {
		b, err := os.ReadFile(filepath.Join(root, "nginx/examples", s))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return text
}

// haproxyFragment completes a block marked as a fragment: a global section with the runtime
// API and the server-state file, and TCP defaults.
const haproxyFragment = `global
    stats socket %[1]s/admin.sock mode 600 level admin
    server-state-file %[1]s/server-state

defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m

`

var warningRE = regexp.MustCompile(`(?m)^.*\[(WARNING|ALERT|warn|emerg|alert|crit)\].*$`)

func (l *loaders) haproxyCheck(t *testing.T, b docsblocks.Block) error {
	dir := t.TempDir()
	cfg := l.rewrite(t, b.Text, dir)
	if b.Fragment {
		cfg = fmt.Sprintf(haproxyFragment, dir) + cfg
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(l.haproxy, "-c", "-f", path).CombinedOutput()
	header := 0
	if b.Fragment {
		header = strings.Count(fmt.Sprintf(haproxyFragment, dir), "\n")
	}
	out = docLines(out, path, b, header)
	if err != nil {
		return fmt.Errorf("haproxy -c: %v\n%s", err, out)
	}
	if w := warningRE.FindAllString(string(out), -1); w != nil {
		return fmt.Errorf("haproxy -c warns:\n%s", strings.Join(w, "\n"))
	}
	return nil
}

// docLines turns "PATH:N" in a program's output into the printed block's file:line.
func docLines(out []byte, path string, b docsblocks.Block, header int) []byte {
	re := regexp.MustCompile(regexp.QuoteMeta(path) + `:(\d+)`)
	return re.ReplaceAllFunc(out, func(m []byte) []byte {
		var n int
		fmt.Sscanf(string(re.FindSubmatch(m)[1]), "%d", &n)
		if n-header < 1 {
			return m
		}
		return []byte(fmt.Sprintf("%s:%d", b.File, b.Line+n-header-1))
	})
}

// nginxFragment completes a block marked as a fragment: it goes into an http {} block of a
// minimal nginx.conf that loads Debian's modules.
const nginxFragment = "pid %[1]s/nginx.pid;\ninclude /etc/nginx/modules-enabled/*.conf;\nevents {}\nhttp {\n%[2]s\n}\n"

func (l *loaders) nginxTest(t *testing.T, b docsblocks.Block, text string) error {
	dir := t.TempDir()
	conf := l.rewrite(t, text, dir)
	header := 0
	if b.Fragment {
		conf = fmt.Sprintf(nginxFragment, dir, conf)
		header = strings.Count(fmt.Sprintf(nginxFragment, dir, ""), "\n") - 2
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The prefix is dir; Debian's modules-enabled/*.conf load "modules/NAME.so" from it.
	if err := os.Symlink(filepath.Dir(testenv.ModulePath("x")), filepath.Join(dir, "modules")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(l.nginx, "-t", "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", path).CombinedOutput()
	out = docLines(out, path, b, header)
	if err != nil {
		return fmt.Errorf("nginx -t: %v\n%s", err, out)
	}
	if w := warningRE.FindAllString(string(out), -1); w != nil {
		return fmt.Errorf("nginx -t warns:\n%s", strings.Join(w, "\n"))
	}
	return nil
}

// serversFile reads a servers file with lbadapter's reader, then has nginx -t include it in
// a stream upstream.
func (l *loaders) serversFile(t *testing.T, b docsblocks.Block) error {
	dir := t.TempDir()
	path := filepath.Join(dir, "block.servers")
	if err := os.WriteFile(path, []byte(b.Text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := nginx.ReadFile(path); err != nil {
		return errors.New(string(docLines([]byte(err.Error()), path, b, 0)))
	}
	conf := fmt.Sprintf("pid %[1]s/nginx.pid;\ninclude /etc/nginx/modules-enabled/*.conf;\nevents {}\n"+
		"stream {\n    upstream u {\n        include %[2]s;\n    }\n}\n", dir, path)
	err := l.nginxTest(t, docsblocks.Block{File: "(the test's stream {} around it)", Line: 1}, conf)
	if err != nil {
		return errors.New(string(docLines([]byte(err.Error()), path, b, 0)))
	}
	return nil
}

// TestExtractorFindsTheDocs: the Markdown sources are where the docs are (a renamed folder
// must not silently drop its blocks from TestPrintedConfigLoads).
func TestExtractorFindsTheDocs(t *testing.T) {
	blocks, err := docsblocks.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, b := range blocks {
		if !slices.Contains(files, b.File) {
			files = append(files, b.File)
		}
	}
	for _, want := range []string{"README.md", "docs/haproxy.md", "docs/lbadapter.md", "docs/nginx.md",
		"docs/security.md", "examples/cluster.ini", "haproxy/examples/haproxy.cfg", "nginx/examples/nginx-stream.conf"} {
		if !slices.Contains(files, want) {
			t.Errorf("no block from %s (found %v)", want, files)
		}
	}
}
