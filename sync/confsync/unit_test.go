package confsync

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestExcludes(t *testing.T) {
	ex, err := NewExcludes(append(DefaultExcludes, "cache/", "a/**/z", "[bc]at?"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"db.properties", false, true},
		{"sub/db.properties", false, true}, // unanchored: any depth
		{"db.properties.bak", false, false},
		{"postgresql", true, true},
		{"x/postgresql", true, false}, // anchored at the root
		{"globalconf", true, true},
		{"conf.d/node.ini", false, true},
		{"x/conf.d/node.ini", false, false},
		{"conf.d/local.ini", false, false},
		{"gpghome", true, true},
		{"a.tmp", false, true},
		{"deep/er/b.tmp", false, true},
		{"a.tmpl", false, false},
		{"cache", true, true},
		{"cache", false, false}, // trailing "/" = directories only
		{"a/b/c/z", false, true},
		{"q/a/b/z", false, true},
		{"cat1", false, true},
		{"bat", false, false},
	} {
		if got := ex.Match(tt.path, tt.isDir); got != tt.want {
			t.Errorf("Match(%q, dir=%v) = %v; want %v", tt.path, tt.isDir, got, tt.want)
		}
	}
	for _, bad := range []string{"", "/", "[abc"} {
		if _, err := NewExcludes([]string{bad}); !errors.Is(err, ErrBadPattern) {
			t.Errorf("NewExcludes(%q) err = %v; want ErrBadPattern", bad, err)
		}
	}
}

func TestUnsafeLink(t *testing.T) {
	for _, tt := range []struct {
		rel, target string
		safe        bool
	}{
		{"a", "b", true},
		{"a", ".", true},
		{"d/a", "../b", true},
		{"d/e/a", "../../b/c", true},
		{"a", "../b", false},
		{"d/a", "../../b", false},
		{"a", "/etc/passwd", false},
		{"a", "", false},
		{"d/a", "x/../../b", false},
		{"d/a", "x/..", false},
	} {
		if got := unsafeLink(tt.rel, tt.target) == ""; got != tt.safe {
			t.Errorf("%s -> %s safe = %v; want %v", tt.rel, tt.target, got, tt.safe)
		}
	}
}

func TestApplierPathRefusesEscapes(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	a := &applier{root: root, checked: map[string]bool{}}
	for _, rel := range []string{"../x", "/etc/passwd", "a/../../x", "a//b", "./a", "link/file", ""} {
		if _, err := a.path(rel); err == nil {
			t.Errorf("path(%q) accepted; want refusal", rel)
		}
	}
	if got, err := a.path("ok/../ok"); err == nil {
		t.Errorf("path(ok/../ok) = %q; want refusal", got)
	}
	if got, err := a.path("file"); err != nil || got != filepath.Join(root, "file") {
		t.Errorf("path(file) = %q, %v; want %q", got, err, filepath.Join(root, "file"))
	}
}

func TestMakePlanItems(t *testing.T) {
	f := func(p string, size, mtime int64, mode os.FileMode) Entry {
		return Entry{Path: p, Mode: mode, Size: size, Mtime: mtime}
	}
	remote := Tree{
		"new":  f("new", 1, 1, 0o644),
		"same": f("same", 1, 1, 0o644),
		"time": f("time", 1, 2, 0o644),
		"perm": f("perm", 1, 1, 0o600),
		"d":    f("d", 0, 5, os.ModeDir|0o755),
	}
	local := Tree{
		"same":   f("same", 1, 1, 0o644),
		"time":   f("time", 1, 1, 0o644),
		"perm":   f("perm", 1, 1, 0o644),
		"d":      f("d", 0, 5, os.ModeDir|0o755),
		"gone":   f("gone", 0, 1, os.ModeDir|0o755),
		"gone/x": f("gone/x", 1, 1, 0o644),
	}
	p := makePlan(remote, local, false, nil)
	var got []string
	for _, it := range p.Items {
		got = append(got, it.String())
	}
	want := []string{"*deleting   gone/", ">f+++++++++ new", ".f...p..... perm", ">f..t...... time"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("items = %q; want %q", got, want)
	}
	if len(p.Remove) != 1 || len(p.Fetch) != 2 || len(p.Attrs) != 1 {
		t.Errorf("plan: %d removes, %d fetches, %d attrs; want 1, 2, 1", len(p.Remove), len(p.Fetch), len(p.Attrs))
	}
	if sameTrees(remote, local, false) {
		t.Errorf("sameTrees = true for different trees")
	}
	if !sameTrees(remote, remote, true) {
		t.Errorf("sameTrees(t, t) = false")
	}
}

func TestLoadConfig(t *testing.T) {
	write := func(dir, name, body string) {
		t.Helper()
		p := filepath.Join(dir, "conf.d", name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	write(dir, "lbagent.ini", "[sync]\nprimary = ss1:2222\ninterval = 2s\nexclude = a, /b\nio-timeout = 15\nfull-scan-interval = 30s\n")
	write(dir, "node.ini", "[node]\ntype=slave\n[sync]\nprimary = ss9\n")
	c, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Primary != "ss9" || c.Interval != 2*time.Second || c.IOTimeout != 15*time.Second || c.FullScan != 30*time.Second ||
		strings.Join(c.Excludes, " ") != "a /b" || c.User != DefaultUser {
		t.Errorf("config = %+v; want node.ini's primary over lbagent.ini's, the rest from lbagent.ini and defaults", c)
	}
	if c, err := LoadConfig(t.TempDir()); err != nil || c.Target != DefaultDir {
		t.Errorf("no files: %+v, %v; want defaults", c, err)
	}
	for _, tt := range []struct{ body, want string }{
		{"[sync]\ninterval = soon\n", `lbagent.ini:2: [sync] interval = "soon": want a duration from 10ms to 24h`},
		{"[sync]\ncolour = red\n", `lbagent.ini:2: unknown key "colour" in [sync] (known: primary, user,`},
		{"[sync]\nprimry = ss1\n", `lbagent.ini:2: unknown key "primry" in [sync]; did you mean "primary"?`},
		{"[sync]\naccept-new-host-key = maybe\n", `lbagent.ini:2: [sync] accept-new-host-key = "maybe": want true or false`},
		{"[sync]\nparallel = 0\n", `lbagent.ini:2: [sync] parallel = "0": want a whole number from 1 to 256`},
		{"[sync]\nfull-scan-interval = 0\n", `lbagent.ini:2: [sync] full-scan-interval = "0": want a duration from 10ms to 24h`},
	} {
		d := t.TempDir()
		write(d, "lbagent.ini", tt.body)
		_, err := LoadConfig(d)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrConfig) {
			t.Errorf("%q: err = %v; want one containing %q", tt.body, err, tt.want)
		}
	}
	for _, tt := range []struct {
		mod  func(*Config)
		want error
	}{
		{func(c *Config) { c.Target = "/" }, ErrBadTarget},
		{func(c *Config) { c.Target = "//." }, ErrBadTarget},
		{func(c *Config) { c.Target = "rel" }, ErrBadTarget},
		{func(c *Config) { c.Primary = "" }, ErrConfig},
		{func(c *Config) { c.Primary = "h:99999" }, ErrConfig},
		{func(c *Config) { c.Excludes = []string{"[x"} }, ErrBadPattern},
		{func(c *Config) { c.FullScan = -time.Hour }, ErrConfig}, // --full-scan-interval -1h
		{func(c *Config) { c.IOTimeout = 0 }, ErrConfig},
		{func(c *Config) {}, nil},
	} {
		c := DefaultConfig()
		c.Primary = "ss1"
		tt.mod(&c)
		if err := c.Validate(); !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
			t.Errorf("Validate(%+v) = %v; want %v", c, err, tt.want)
		}
	}
}

func TestCheckAge(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Primary = "ss1"
	cfg.MaxAgeWarning = time.Minute
	clock := clockwork.NewFakeClockAt(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
	w, err := NewWorkerWithClock(cfg, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Check(t.Context()); err != nil {
		t.Errorf("fresh worker: Check = %v; want nil", err)
	}
	clock.Advance(2 * time.Minute)
	if err := w.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "not succeeded since start") {
		t.Errorf("no success for 2m: Check = %v; want a warning", err)
	}
	last := clock.Now().Add(-30 * time.Second)
	w.st.LastSuccess = &last
	if err := w.Check(t.Context()); err != nil {
		t.Errorf("success 30s ago: Check = %v; want nil", err)
	}
	clock.Advance(time.Minute)
	if err := w.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "stale: last success 1m30s ago") {
		t.Errorf("success 90s ago: Check = %v; want stale warning", err)
	}
	if st := w.Status(); st.AgeSeconds == nil || *st.AgeSeconds != 90 || st.Warning == "" {
		t.Errorf("status = %+v; want age 90 and a warning", st)
	}
}

// TestWorkerRetriesOnItsClock: after a failed pass, Run waits on its clock for the back-off
// (the interval, then twice the interval) before the next pass, never less.
func TestWorkerRetriesOnItsClock(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a closed port: every pass fails at once
	if err != nil {
		t.Fatal(err)
	}
	primary := ln.Addr().String()
	ln.Close()
	cfg := DefaultConfig()
	cfg.Primary, cfg.Interval = primary, 10*time.Second
	cfg.Identity, cfg.KnownHosts = filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	cfg.Target, cfg.StateDir = filepath.Join(dir, "target"), filepath.Join(dir, "state")
	cfg.PauseFile, cfg.LogFile = filepath.Join(dir, "sync-disabled"), filepath.Join(dir, "sync.log")
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(t0)
	w, err := NewWorkerWithClock(cfg, clock)
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan time.Time, 10) // the clock's time of each failed pass
	w.Report = func(e Event) {
		if e.Kind == EventError {
			failed <- clock.Now()
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	next := func(i int, want time.Time) {
		t.Helper()
		if at := <-failed; !at.Equal(want) {
			t.Fatalf("failed pass %d at %v; want %v", i, at, want)
		}
	}
	// waitNoPass: Run waits on its timer and has made no pass since the last one seen. Had the
	// timer fired, the pass would have been reported before the next timer is set.
	waitNoPass := func(why string) {
		t.Helper()
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-failed:
			t.Fatalf("a pass at %v %s", at, why)
		default:
		}
	}
	next(0, t0)
	waitNoPass("before any time passed")
	clock.Advance(cfg.Interval - time.Nanosecond)
	waitNoPass("before the interval passed")
	clock.Advance(time.Nanosecond)
	next(1, t0.Add(cfg.Interval))
	waitNoPass("right after the first retry")
	clock.Advance(2*cfg.Interval - time.Nanosecond)
	waitNoPass("before twice the interval passed (the back-off after two failures)")
	clock.Advance(time.Nanosecond)
	next(2, t0.Add(3*cfg.Interval))
	if st := w.Status(); st.Failures != 3 || st.LastError == "" {
		t.Errorf("status %+v; want 3 failures and the last error", st)
	}
}

func TestLogFormat(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {65346, "65,346"}, {1234567, "1,234,567"}} {
		if got := thousands(tt.n); got != tt.want {
			t.Errorf("thousands(%d) = %q; want %q", tt.n, got, tt.want)
		}
	}
	if got := (Item{Code: "*deleting", Path: "signer/x", Dir: true}).String(); got != "*deleting   signer/x/" {
		t.Errorf("delete item = %q", got)
	}
	if got := (Item{Code: "cL+++++++++", Path: "a", Link: "b"}).String(); got != "cL+++++++++ a -> b" {
		t.Errorf("symlink item = %q", got)
	}
}

// The literal and "*suffix" fast paths agree with the rule's regexp.
func TestExcludeFastPaths(t *testing.T) {
	patterns := []string{"db.properties", "/globalconf", "/conf.d/node.ini", "conf.d/x", "*.tmp", "cache/", "/a/"}
	ex, err := NewExcludes(patterns)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"db.properties", "a/db.properties", "xdb.properties", "a/xdb.properties", "globalconf",
		"x/globalconf", "conf.d/node.ini", "y/conf.d/node.ini", "conf.d/x", "y/conf.d/x", "yconf.d/x",
		"a.tmp", "d/b.tmp", ".tmp", "a.tmpl", "cache", "q/cache", "a", "b/a", "tmp"}
	fast := 0
	for _, r := range ex.rules {
		if r.kind == 0 {
			continue
		}
		fast++
		for _, p := range paths {
			one := &Excludes{rules: []excludeRule{r}}
			if got, want := one.Match(p, true), r.re.MatchString(p); got != want {
				t.Errorf("pattern %q, path %q: fast path %v; regexp %v", r.pattern, p, got, want)
			}
		}
	}
	if fast != len(patterns) {
		t.Errorf("%d of %d patterns on a fast path; want all", fast, len(patterns))
	}
}
