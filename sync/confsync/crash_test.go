package confsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The kill test runs a pass in a child process (this test binary, re-executed) that
// SIGKILLs itself at the n-th interesting point of the pass (testHook: after each file
// staged, after the journal is written, after every commit step, after the final syncfs,
// after the journal is removed).
const (
	crashEnvConfig = "LBKIT_SYNC_CRASH_CONFIG"
	crashEnvAt     = "LBKIT_SYNC_CRASH_AT"
	// crashEnvBlock names a path of the target where a directory appears right after the
	// journal is written, so the commit fails there and rolls back.
	crashEnvBlock = "LBKIT_SYNC_CRASH_BLOCK"
)

func TestMain(m *testing.M) {
	if c := os.Getenv(crashEnvConfig); c != "" {
		os.Exit(crashChild(c, os.Getenv(crashEnvAt)))
	}
	if os.Getenv(serveEnv) != "" { // this binary as "lbagent sync serve" (notify_test.go)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }() // the session ended
		if err := Serve(ctx, os.Args[1], os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild runs one pass; with at > 0 it kills itself with SIGKILL at point at. It
// prints the points it passed, by kind, as JSON.
func crashChild(cfgJSON, atStr string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	at, _ := strconv.ParseInt(atStr, 10, 64)
	var n atomic.Int64
	var mu = make(chan struct{}, 1)
	kinds := map[string]int64{}
	block := os.Getenv(crashEnvBlock)
	testHook = func(kind string) {
		if kind == "journal" && block != "" {
			_ = os.MkdirAll(filepath.Join(cfg.Target, block, "blocker"), 0o755)
		}
		i := n.Add(1)
		if i == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal arrives before this returns
		}
		mu <- struct{}{}
		if _, ok := kinds[kind]; !ok {
			kinds[kind] = i // first point of each kind
		}
		<-mu
	}
	s, err := NewSyncer(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	if _, err := s.Pass(context.Background()); err != nil {
		kinds["total"] = n.Load()
		b, _ := json.Marshal(kinds)
		fmt.Println(string(b))
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kinds["total"] = n.Load()
	b, _ := json.Marshal(kinds)
	fmt.Println(string(b))
	return 0
}

// treeState describes every entry of a tree: type, mode, owner, time (directories too),
// content or symlink target.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %d %q", fi.ModTime().Unix(), b)
		case fi.IsDir():
			desc += fmt.Sprintf(" %d", fi.ModTime().Unix())
		default:
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

// diffTrees describes how got differs from want (at most a few lines).
func diffTrees(got, want map[string]string) string {
	var out []string
	for rel, w := range want {
		if g, ok := got[rel]; !ok {
			out = append(out, "missing "+rel)
		} else if g != w {
			out = append(out, "differs "+rel)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			out = append(out, "extra "+rel)
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("... %d differences", len(out)))
	}
	return strings.Join(out, ", ")
}

// writeGenerations writes two versions of an /etc/xroad-like tree of 3,000 files: a
// (old) and b (new: a third of the files rewritten, every seventh deleted, a directory
// removed, one file turned into a directory and one directory into a file, modes changed,
// a symlink retargeted, 300 new files, a new directory).
func writeGenerations(t *testing.T, a, b string) {
	t.Helper()
	t0 := time.Unix(1_700_000_000, 0)
	put := func(root, rel, content string, mode fs.FileMode, mtime time.Time) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	for d := range 30 {
		for f := range 100 {
			rel := fmt.Sprintf("d%02d/f%03d.xml", d, f)
			old := fmt.Sprintf("old %s %s", rel, strings.Repeat("x", 100+(d*7+f)%200))
			put(a, rel, old, 0o640, t0)
			i := d*100 + f
			switch {
			case d == 5: // the whole directory goes
			case d == 7 && f == 10: // becomes a directory
				put(b, rel+"/inside", "now a directory", 0o644, t0.Add(time.Hour))
			case i%7 == 0:
			case i%3 == 0:
				put(b, rel, "new "+rel+strings.Repeat("y", f), 0o640, t0.Add(time.Hour))
			case i%11 == 0:
				put(b, rel, old, 0o600, t0)
			default:
				put(b, rel, old, 0o640, t0)
			}
		}
	}
	put(a, "d08/sub", "a file that becomes a directory's place", 0o644, t0)
	put(b, "d08/sub/x", "dir now", 0o644, t0.Add(time.Hour))
	put(b, "d29/zz-new.ini", "new in an old directory", 0o644, t0.Add(time.Hour))
	for f := range 300 {
		put(b, fmt.Sprintf("new/n%03d.ini", f), fmt.Sprintf("brand new %d", f), 0o644, t0.Add(time.Hour))
	}
	for root, target := range map[string]string{a: "d00/f001.xml", b: "d01/f001.xml"} {
		if err := os.Symlink(target, filepath.Join(root, "current")); err != nil {
			t.Fatal(err)
		}
	}
	// Directory times last (writing into a directory moves its time).
	for _, root := range []string{a, b} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != root {
				err = os.Chtimes(p, t0, t0)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A pass killed with SIGKILL at any point leaves, once the next start has recovered, the
// target equal to the old tree (killed before the journal was written) or the new one
// (after), file for file, and no staging area or journal behind. The passes go both ways
// (old to new, new to old), so each kill starts from whichever tree the last one left.
func TestKillAtEveryPointOfAPass(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test: many passes over 3,000 files")
	}
	r := newRig(t)
	srcA, srcB := r.src, filepath.Join(filepath.Dir(r.src), "primary-b")
	writeGenerations(t, srcA, srcB)
	r.cfg.LogFile = ""
	cfgs := map[bool]Config{false: r.cfg, true: r.cfg} // the tree a pass leads to: false = a, true = b
	cfgB := cfgs[true]
	cfgB.Source = srcB + "/"
	cfgs[true] = cfgB

	pass := func(cfg Config) {
		t.Helper()
		s, err := NewSyncer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Pass(context.Background()); err != nil {
			t.Fatalf("pass from %s: %v", cfg.Source, err)
		}
	}
	// The new tree, as a clean pass writes it.
	clean := cfgB
	clean.Target = filepath.Join(t.TempDir(), "clean")
	pass(clean)
	want := map[bool]map[string]string{true: treeState(t, clean.Target)}
	pass(cfgs[false])
	want[false] = treeState(t, r.dst)
	if diffTrees(want[false], want[true]) == "" {
		t.Fatal("the two generations are the same")
	}
	cur := false // the tree the target holds

	// child runs a pass to the other tree in a child process, killed at point at (0 = not).
	child := func(at int64) ([]byte, error) {
		b, err := json.Marshal(cfgs[!cur])
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnvConfig+"="+string(b), crashEnvAt+"="+strconv.FormatInt(at, 10))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		return out, err
	}
	// A full pass each way without a kill counts the points.
	points := map[bool]map[string]int64{}
	for range 2 {
		out, err := child(0)
		if err != nil {
			t.Fatalf("child pass: %v", err)
		}
		var p map[string]int64
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatalf("child output %q: %v", out, err)
		}
		cur = !cur
		if got := treeState(t, r.dst); diffTrees(got, want[cur]) != "" {
			t.Fatalf("uninterrupted pass: %s", diffTrees(got, want[cur]))
		}
		if p["fetch"] == 0 || p["journal"] == 0 || p["step"] == 0 || p["total"] < p["journal"]+1000 {
			t.Fatalf("points = %v; want fetches, a journal and over a thousand steps", p)
		}
		points[cur] = p
	}
	// Kill points each way: during the download, at the journal, spread over the commit
	// steps, after the final syncfs and after the journal is removed (staging still there).
	at := map[bool][]int64{}
	for to, p := range points {
		j, total := p["journal"], p["total"]
		at[to] = []int64{1, j / 2, j - 1, j, j + 1}
		for i := int64(1); i <= 9; i++ {
			at[to] = append(at[to], j+1+i*(total-j-3)/10)
		}
		at[to] = append(at[to], p["synced"], p["cleared"])
	}

	st, err := openState(stateDirFor(r.cfg.StateDir, r.dst))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	for len(at[true])+len(at[false]) > 0 {
		to := !cur
		if len(at[to]) == 0 { // nothing left this way: go over without a kill
			pass(cfgs[to])
			cur = to
			continue
		}
		n, p := at[to][0], points[to]
		at[to] = at[to][1:]
		_, err := child(n)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("point %d: child %v; want killed by SIGKILL", n, err)
		}
		// What the next start does before it reads the tree.
		if err := st.tryLock(r.dst); err != nil {
			t.Fatal(err)
		}
		replayed, err := recoverTarget(r.dst, st, os.Geteuid() == 0)
		st.unlock()
		if err != nil {
			t.Fatalf("point %d: recover: %v", n, err)
		}
		if n >= p["journal"] {
			cur = to
		}
		name := map[bool]string{true: "b", false: "a"}
		if d := diffTrees(treeState(t, r.dst), want[cur]); d != "" {
			t.Errorf("to %s, point %d of %d (journal at %d, replayed %v): target is not tree %s: %s",
				name[to], n, p["total"], p["journal"], replayed, name[cur], d)
		}
		if replayed != (n >= p["journal"] && n < p["cleared"]) {
			t.Errorf("to %s, point %d: journal replayed = %v", name[to], n, replayed)
		}
		if exists(stagingDirFor(r.dst)) || exists(st.path(journalFile)) {
			t.Errorf("to %s, point %d: staging or journal left after recovery", name[to], n)
		}
	}
}

// A commit that fails half way is rolled back to the old tree; a kill during that rollback
// is finished by the next start (the journal says "back"), again to the old tree.
func TestFailedCommitRollsBackAlsoAcrossKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test")
	}
	r := newRig(t)
	srcB := filepath.Join(filepath.Dir(r.src), "primary-b")
	writeGenerations(t, r.src, srcB)
	r.cfg.LogFile = ""
	cfgB := r.cfg
	cfgB.Source = srcB + "/"
	s, err := NewSyncer(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	old := treeState(t, r.dst)
	// A new file in an old directory, placed late in the commit: a directory appears there
	// after the journal.
	const block = "d29/zz-new.ini"
	b, err := json.Marshal(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	child := func(at int64) ([]byte, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnvConfig+"="+string(b), crashEnvAt+"="+strconv.FormatInt(at, 10), crashEnvBlock+"="+block)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		return out, err
	}
	unblock := func() { // the blocker goes, and its directory's time is the old tree's again
		if err := os.RemoveAll(filepath.Join(r.dst, block)); err != nil {
			t.Fatal(err)
		}
		t0 := time.Unix(1_700_000_000, 0)
		if err := os.Chtimes(filepath.Join(r.dst, "d29"), t0, t0); err != nil {
			t.Fatal(err)
		}
	}
	out, err := child(0)
	if err == nil || !strings.Contains(err.Error(), "is a directory (rolled back)") {
		t.Fatalf("blocked commit: %v; want a rolled-back failure", err)
	}
	unblock()
	if d := diffTrees(treeState(t, r.dst), old); d != "" {
		t.Fatalf("after the rolled-back commit: %s", d)
	}
	var points map[string]int64
	if err := json.Unmarshal(bytes.TrimSpace(out), &points); err != nil || points["back"] == 0 {
		t.Fatalf("child points %q, %v; want rollback steps", out, err)
	}
	st, err := openState(stateDirFor(r.cfg.StateDir, r.dst))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	back, total := points["back"], points["total"]
	for _, n := range []int64{back, back + 1, back + (total-back)/4, (back + total) / 2, total - (total-back)/4, total - 1} {
		_, err := child(n)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("point %d: child %v; want killed by SIGKILL", n, err)
		}
		if err := st.tryLock(r.dst); err != nil {
			t.Fatal(err)
		}
		replayed, err := recoverTarget(r.dst, st, os.Geteuid() == 0)
		st.unlock()
		if err != nil || !replayed {
			t.Fatalf("point %d: recover = %v, %v; want the rollback finished", n, replayed, err)
		}
		unblock()
		if d := diffTrees(treeState(t, r.dst), old); d != "" {
			t.Errorf("killed during the rollback at point %d of %d: not the old tree: %s", n, total, d)
		}
		if exists(stagingDirFor(r.dst)) || exists(st.path(journalFile)) {
			t.Errorf("point %d: staging or journal left after recovery", n)
		}
	}
}
