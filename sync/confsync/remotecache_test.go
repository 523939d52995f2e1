package confsync

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// clockedWorker returns a worker whose passes run at the fake clock's time.
func clockedWorker(t *testing.T, r *rig, clock *clockwork.FakeClock) *Worker {
	t.Helper()
	return r.clockedWorker(t, clock)
}

// advanceTo moves the fake clock forward to at.
func advanceTo(clock *clockwork.FakeClock, at time.Time) { clock.Advance(at.Sub(clock.Now())) }

// backdate sets the time of every directory below root to tm, so a later change moves it.
func backdate(t *testing.T, root string, tm time.Time) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, tm, tm)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mtime(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// A file rewritten in place moves no directory's time: idle passes do not see it, the
// next full listing (FullScan after the last) does.
func TestInPlaceEditSeenByFullListing(t *testing.T) {
	r := newRig(t)
	r.cfg.FullScan = 10 * time.Second
	r.write(t, "conf.d/local.ini", "aaaa", 0o644)
	r.write(t, "signer/keyconf.xml", "<k/>", 0o644)
	backdate(t, r.src, time.Now().Add(-time.Minute))
	clock := clockwork.NewFakeClockAt(time.Now().Add(time.Hour))
	w := clockedWorker(t, r, clock)
	if res := r.once(t, w); !res.FullList || res.Listed != 3 {
		t.Fatalf("first pass: full %v, %d directories listed; want a full listing of 3", res.FullList, res.Listed)
	}
	clock.Advance(time.Second)
	if res := r.once(t, w); res.FullList || res.Listed != 0 || res.Checked != 3 || len(res.Items) != 0 {
		t.Fatalf("idle pass: full %v, listed %d, checked %d, items %v; want 3 directories checked, none listed",
			res.FullList, res.Listed, res.Checked, codes(res.Items))
	}

	dir := filepath.Join(r.src, "conf.d")
	before := mtime(t, dir)
	r.write(t, "conf.d/local.ini", "bbbb", 0o644) // same size, in place
	edited := time.Now().Add(-30 * time.Second)
	if err := os.Chtimes(filepath.Join(dir, "local.ini"), edited, edited); err != nil {
		t.Fatal(err)
	}
	if !mtime(t, dir).Equal(before) {
		t.Fatalf("writing in place moved the directory's time; the test needs it unchanged")
	}
	local := filepath.Join(r.dst, "conf.d/local.ini")
	for i := 2; i < 10; i++ {
		clock.Advance(time.Second)
		if res := r.once(t, w); res.FullList {
			t.Fatalf("pass %d s after the full listing listed everything; want only at 10 s", i)
		}
	}
	if got := readFile(t, local); got != "aaaa" {
		t.Fatalf("in-place edit seen before the full listing (%q): the idle passes listed files", got)
	}
	clock.Advance(time.Second) // 10 s after the last full listing
	res := r.once(t, w)
	if !res.FullList {
		t.Errorf("pass 10 s after the last full listing: not a full listing")
	}
	if got := readFile(t, local); got != "bbbb" {
		t.Errorf("after the full listing local.ini = %q; want %q", got, "bbbb")
	}
	if got := codes(res.Items); len(got) != 1 || got[0] != ">f..t...... conf.d/local.ini" {
		t.Errorf("items = %q; want the one in-place edit", got)
	}
}

// Changes deep in the tree reach the secondary at the next pass without a full listing:
// a file replaced by rename in a sub-sub-directory, a new directory below it, a deleted
// file, a chmod of a directory, and a directory removed while its parent's time was put
// back (only the failed LSTAT shows it).
func TestDeepChangesWithoutFullListing(t *testing.T) {
	r := newRig(t)
	r.cfg.FullScan = time.Hour
	r.write(t, "a/b/c/x.xml", "old", 0o644)
	r.write(t, "a/b/keep", "k", 0o644)
	r.write(t, "e/f/g", "g", 0o644)
	r.write(t, "top.ini", "t", 0o644)
	old := time.Now().Add(-time.Minute).Truncate(time.Second)
	backdate(t, r.src, old)
	clock := clockwork.NewFakeClockAt(time.Now().Add(time.Hour))
	w := clockedWorker(t, r, clock)
	r.once(t, w)

	tmp := filepath.Join(r.src, "a/b/c/x.xml.new")
	if err := os.WriteFile(tmp, []byte("new content"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(r.src, "a/b/c/x.xml")); err != nil {
		t.Fatal(err)
	}
	r.write(t, "a/b/c/d/new.xml", "n", 0o600)
	if err := os.Remove(filepath.Join(r.src, "a/b/keep")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(r.src, "a"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(r.src, "e/f")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(r.src, "e"), old, old); err != nil {
		t.Fatal(err)
	}

	clock.Advance(time.Second)
	res := r.once(t, w)
	if res.FullList {
		t.Fatalf("pass after the changes listed everything; want only the changed directories")
	}
	// a/b (keep deleted) with a/b/c and its new a/b/c/d, and e (its child is gone).
	if res.Listed != 4 {
		t.Errorf("%d directories listed; want 4 (a/b, a/b/c, a/b/c/d, e)", res.Listed)
	}
	if got := readFile(t, filepath.Join(r.dst, "a/b/c/x.xml")); got != "new content" {
		t.Errorf("a/b/c/x.xml = %q; want %q", got, "new content")
	}
	if got := readFile(t, filepath.Join(r.dst, "a/b/c/d/new.xml")); got != "n" {
		t.Errorf("a/b/c/d/new.xml = %q; want %q", got, "n")
	}
	for _, gone := range []string{"a/b/keep", "e/f"} {
		if exists(filepath.Join(r.dst, gone)) {
			t.Errorf("%s still on the secondary", gone)
		}
	}
	if fi, err := os.Stat(filepath.Join(r.dst, "a")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("mode of a = %v, %v; want 0750", fi.Mode().Perm(), err)
	}
	// Everything this pass did not list is unchanged: the next pass is idle.
	clock.Advance(time.Second)
	if res := r.once(t, w); len(res.Items) != 0 || res.Listed != 0 {
		t.Errorf("pass after the deep change: items %v, %d directories listed; want an idle pass", codes(res.Items), res.Listed)
	}
}

// SFTP times are whole seconds: a second change within the second a directory was listed
// in leaves its time as listed. Such a directory keeps being listed until it settles.
func TestSameSecondChangeIsNotMissed(t *testing.T) {
	r := newRig(t)
	r.cfg.FullScan = time.Hour
	r.write(t, "d/zero", "0", 0o644)
	backdate(t, r.src, time.Now().Add(-time.Minute))
	start := time.Now().Add(time.Hour).Truncate(time.Second)
	clock := clockwork.NewFakeClockAt(start)
	w := clockedWorker(t, r, clock)
	r.once(t, w)
	dir := filepath.Join(r.src, "d")
	changeAt := func(name string, tm time.Time) {
		r.write(t, "d/"+name, name, 0o644)
		if err := os.Chtimes(dir, tm, tm); err != nil {
			t.Fatal(err)
		}
	}

	changeAt("one", start.Add(time.Second))
	advanceTo(clock, start.Add(time.Second+500*time.Millisecond)) // listed in the second of the change
	r.once(t, w)
	changeAt("two", start.Add(time.Second)) // same second: the directory's time does not move
	advanceTo(clock, start.Add(2*time.Second))
	r.once(t, w)
	for _, f := range []string{"one", "two"} {
		if !exists(filepath.Join(r.dst, "d", f)) {
			t.Errorf("d/%s not on the secondary after a change within the listed second", f)
		}
	}
	// Once settled, the directory is only checked again.
	advanceTo(clock, start.Add(time.Second+remoteSettle+2*time.Second))
	r.once(t, w)
	clock.Advance(time.Second)
	if res := r.once(t, w); res.Listed != 0 || res.Checked != 2 {
		t.Errorf("settled: %d directories listed, %d checked; want 0 and 2", res.Listed, res.Checked)
	}
}
