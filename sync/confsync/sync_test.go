package confsync

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/testenv"
)

// rig is a primary (sshd serving src) and a secondary directory (dst) on this machine.
type rig struct {
	sshd     *testenv.SSHD
	src, dst string
	cfg      Config
}

func newRig(t testing.TB) *rig {
	t.Helper()
	return newRigOpts(t, testenv.SSHDOptions{})
}

func newRigOpts(t testing.TB, opts testenv.SSHDOptions) *rig {
	t.Helper()
	s := testenv.NewSSHD(t, opts)
	dir := t.TempDir()
	r := &rig{sshd: s, src: filepath.Join(dir, "primary"), dst: filepath.Join(dir, "secondary")}
	if err := os.MkdirAll(r.src, 0o755); err != nil {
		t.Fatal(err)
	}
	r.cfg = DefaultConfig()
	r.cfg.Primary, r.cfg.User = s.Addr, s.User
	r.cfg.Identity, r.cfg.KnownHosts = s.ClientKeyPath, s.KnownHostsPath
	r.cfg.Source, r.cfg.Target = r.src+"/", r.dst+"/"
	r.cfg.PauseFile = filepath.Join(dir, "sync-disabled")
	r.cfg.LogFile = filepath.Join(dir, "sync.log")
	r.cfg.StateDir = filepath.Join(dir, "state")
	return r
}

func (r *rig) write(t testing.TB, rel, content string, mode fs.FileMode) {
	t.Helper()
	p := filepath.Join(r.src, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) worker(t testing.TB) *Worker {
	t.Helper()
	return r.clockedWorker(t, clockwork.NewRealClock())
}

// clockedWorker is worker with an injected clock.
func (r *rig) clockedWorker(t testing.TB, clock clockwork.Clock) *Worker {
	t.Helper()
	w, err := NewWorkerWithClock(r.cfg, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func (r *rig) once(t *testing.T, w *Worker) Result {
	t.Helper()
	res, err := w.Once(context.Background())
	if err != nil {
		t.Fatalf("pass: %v\nsshd log:\n%s", err, r.sshd.Log())
	}
	return res
}

// snapshot is a tree's every entry with its content, mode, owner and time.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fi.Mode().String() + " " + itoa(st.Uid) + ":" + itoa(st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + fi.ModTime().UTC().Format(time.RFC3339) + " " + string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func itoa(n uint32) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtUint(n)) }

func fmtUint(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func codes(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.String())
	}
	sort.Strings(out)
	return out
}

func TestSyncNewChangedDeletedExcluded(t *testing.T) {
	r := newRig(t)
	r.write(t, "conf.d/local.ini", "[proxy]\nhealth-check-port=5588\n", 0o640)
	r.write(t, "signer/keyconf.xml", "<keyConf/>", 0o660)
	r.write(t, "signer/softtoken/a.p12", "secret", 0o600)
	r.write(t, "db.properties", "primary-only", 0o640)
	r.write(t, "conf.d/node.ini", "[node]\ntype=master\n", 0o644)
	r.write(t, "globalconf/EE/shared-params.xml", "gc", 0o644)
	r.write(t, "x.tmp", "tmp", 0o644)
	r.write(t, "sub/y.tmp", "tmp", 0o644)
	r.write(t, "postgresql/a", "pg", 0o644)
	r.write(t, "deep/postgresql/kept", "not anchored, so copied", 0o644)
	// The secondary's own node.ini and db.properties must survive (excluded = not deleted).
	for rel, c := range map[string]string{"conf.d/node.ini": "[node]\ntype=slave\n", "db.properties": "secondary"} {
		p := filepath.Join(r.dst, rel)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	w := r.worker(t)
	res := r.once(t, w)
	if res.Changes == 0 {
		t.Fatalf("first pass changed nothing")
	}
	for _, tt := range []struct {
		rel  string
		want string // "" = must not exist
	}{
		{"conf.d/local.ini", "[proxy]\nhealth-check-port=5588\n"},
		{"signer/keyconf.xml", "<keyConf/>"},
		{"signer/softtoken/a.p12", "secret"},
		{"deep/postgresql/kept", "not anchored, so copied"},
		{"conf.d/node.ini", "[node]\ntype=slave\n"},
		{"db.properties", "secondary"},
		{"globalconf/EE/shared-params.xml", ""},
		{"x.tmp", ""},
		{"sub/y.tmp", ""},
		{"postgresql/a", ""},
	} {
		p := filepath.Join(r.dst, tt.rel)
		if tt.want == "" {
			if exists(p) {
				t.Errorf("%s exists on the secondary; want excluded", tt.rel)
			}
			continue
		}
		if got := readFile(t, p); got != tt.want {
			t.Errorf("%s = %q; want %q", tt.rel, got, tt.want)
		}
	}
	for rel, want := range map[string]fs.FileMode{"conf.d/local.ini": 0o640, "signer/keyconf.xml": 0o660, "signer/softtoken/a.p12": 0o600} {
		fi, err := os.Stat(filepath.Join(r.dst, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v; want %v", rel, got, want)
		}
	}

	// An unchanged tree is an idle pass.
	if res := r.once(t, w); len(res.Items) != 0 {
		t.Errorf("second pass items = %v; want none", codes(res.Items))
	}

	// Change (same size, new time), add, delete a file and a directory, chmod one.
	r.write(t, "signer/keyconf.xml", "<keyConf2>", 0o660)
	past := time.Now().Add(-time.Hour)
	_ = os.Chtimes(filepath.Join(r.src, "signer/keyconf.xml"), past, past)
	r.write(t, "signer/sync.testfile", "new", 0o644)
	if err := os.RemoveAll(filepath.Join(r.src, "signer/softtoken")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(r.src, "conf.d/local.ini"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = r.once(t, w)
	got := strings.Join(codes(res.Items), "\n")
	for _, want := range []string{">f..t...... signer/keyconf.xml", ">f+++++++++ signer/sync.testfile",
		"*deleting   signer/softtoken/", ".f...p..... conf.d/local.ini"} {
		if !strings.Contains(got, want) {
			t.Errorf("items:\n%s\nwant a line %q", got, want)
		}
	}
	if got := readFile(t, filepath.Join(r.dst, "signer/keyconf.xml")); got != "<keyConf2>" {
		t.Errorf("keyconf.xml = %q; want %q", got, "<keyConf2>")
	}
	if exists(filepath.Join(r.dst, "signer/softtoken")) {
		t.Errorf("signer/softtoken still on the secondary")
	}
	if fi, _ := os.Stat(filepath.Join(r.dst, "conf.d/local.ini")); fi.Mode().Perm() != 0o600 {
		t.Errorf("local.ini mode = %v; want -rw-------", fi.Mode().Perm())
	}
	if exists(stagingDirFor(r.dst)) {
		t.Errorf("staging left behind")
	}
	// The whole synced part of the tree is identical, times and owners included.
	want, have := snapshot(t, r.src), snapshot(t, r.dst)
	for rel, w := range want {
		if r.cfg.Excludes != nil && isExcluded(t, rel) {
			continue
		}
		if have[rel] != w && rel != "." {
			t.Errorf("%s: secondary %q; primary %q", rel, have[rel], w)
		}
	}
	log := readFile(t, r.cfg.LogFile)
	for _, want := range []string{"] >f..t...... signer/keyconf.xml\n", "] *deleting   signer/softtoken/\n", "total size "} {
		if !strings.Contains(log, want) {
			t.Errorf("pass log lacks %q:\n%s", want, log)
		}
	}
	st := w.Status()
	if st.LastSuccess == nil || st.FilesChanged == 0 || st.Paused || st.LastError != "" || st.Warning != "" {
		t.Errorf("status = %+v; want a recent success with changes, not paused, no error", st)
	}
}

func isExcluded(t *testing.T, rel string) bool {
	ex, err := NewExcludes(DefaultExcludes)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i := range parts {
		if ex.Match(strings.Join(parts[:i+1], "/"), i < len(parts)-1) || ex.Match(strings.Join(parts[:i+1], "/"), true) {
			return true
		}
	}
	return false
}

func TestSyncPauseFlag(t *testing.T) {
	r := newRig(t)
	r.write(t, "a.ini", "1", 0o644)
	w := r.worker(t)
	r.once(t, w)
	if err := os.WriteFile(r.cfg.PauseFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.write(t, "a.ini", "22", 0o644)
	_, err := w.Once(context.Background())
	if !errors.Is(err, ErrPaused) {
		t.Fatalf("pass with pause file: err = %v; want ErrPaused", err)
	}
	if got := readFile(t, filepath.Join(r.dst, "a.ini")); got != "1" {
		t.Errorf("paused node got a.ini = %q; want unchanged %q", got, "1")
	}
	if st := w.Status(); !st.Paused || !strings.Contains(st.Warning, "paused") {
		t.Errorf("status = %+v; want paused with a warning", st)
	}
	if err := w.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("Check = %v; want a paused warning", err)
	}
	if log := readFile(t, r.cfg.LogFile); !strings.Contains(log, "sync paused: "+r.cfg.PauseFile) {
		t.Errorf("log lacks the pause:\n%s", log)
	}
	if err := os.Remove(r.cfg.PauseFile); err != nil {
		t.Fatal(err)
	}
	r.once(t, w)
	if got := readFile(t, filepath.Join(r.dst, "a.ini")); got != "22" {
		t.Errorf("after resume a.ini = %q; want %q", got, "22")
	}
	if err := w.Check(context.Background()); err != nil {
		t.Errorf("Check after resume = %v; want nil", err)
	}
}
