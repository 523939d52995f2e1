package confsync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// racyRig is a primary with one file, conf.d/local.ini ("aaaa"), whose time is sec (a
// whole second an hour ahead, so the injected clock, not the wall clock, decides what is
// recent), its directories long settled, and a worker on a fake clock that has fetched the file
// at sec+400ms (within the file's second: the fetch is racy).
func racyRig(t *testing.T) (r *rig, w *Worker, clock *clockwork.FakeClock, sec time.Time) {
	t.Helper()
	r = newRig(t)
	r.cfg.FullScan = 10 * time.Second
	r.write(t, "conf.d/local.ini", "aaaa", 0o644)
	backdate(t, r.src, time.Now().Add(-time.Minute))
	sec = time.Now().Add(time.Hour).Truncate(time.Second)
	setTime(t, filepath.Join(r.src, "conf.d/local.ini"), sec)
	clock = clockwork.NewFakeClockAt(sec.Add(400 * time.Millisecond))
	w = clockedWorker(t, r, clock)
	if got := codes(r.once(t, w).Items); strings.Join(got, "|") != ">f+++++++++ conf.d/local.ini|cd+++++++++ conf.d/" {
		t.Fatalf("first pass items = %q; want the new directory and file", got)
	}
	return r, w, clock, sec
}

func setTime(t *testing.T, p string, tm time.Time) {
	t.Helper()
	if err := os.Chtimes(p, tm, tm); err != nil {
		t.Fatal(err)
	}
}

// A file rewritten within the second it was fetched in, keeping its size, looks unchanged
// to the quick check (SFTP times are whole seconds) and to every later listing. The racy
// rule re-checks it by content at the next pass.
func TestSameSecondRewriteIsApplied(t *testing.T) {
	r, w, clock, sec := racyRig(t)
	src := filepath.Join(r.src, "conf.d/local.ini")
	dir := filepath.Join(r.src, "conf.d")
	before := mtime(t, dir)
	r.write(t, "conf.d/local.ini", "bbbb", 0o644) // in place: the directory's time stays
	setTime(t, src, sec.Add(700*time.Millisecond))
	if !mtime(t, dir).Equal(before) {
		t.Fatalf("writing in place moved the directory's time; the test needs it unchanged")
	}

	advanceTo(clock, sec.Add(1200*time.Millisecond))
	res := r.once(t, w)
	if got := codes(res.Items); len(got) != 1 || got[0] != ">fc........ conf.d/local.ini" {
		t.Errorf("items = %q; want [\">fc........ conf.d/local.ini\"]", got)
	}
	if res.Changes != 1 || res.Verified != 1 || res.FullList {
		t.Errorf("changes %d, verified %d, full listing %v; want 1, 1, false", res.Changes, res.Verified, res.FullList)
	}
	local := filepath.Join(r.dst, "conf.d/local.ini")
	if got := readFile(t, local); got != "bbbb" {
		t.Errorf("after the next pass local.ini = %q; want %q", got, "bbbb")
	}
	if log := readFile(t, r.cfg.LogFile); !strings.Contains(log, "] >fc........ conf.d/local.ini\n") {
		t.Errorf("pass log lacks the content change:\n%s", log)
	}
	// Nothing more happens, through the next full listing and after the file settled.
	for i := 0; i < 12; i++ {
		clock.Advance(time.Second)
		if res := r.once(t, w); len(res.Items) != 0 {
			t.Errorf("pass %d after the change: items %q; want none", i, codes(res.Items))
		}
	}
	if got := readFile(t, local); got != "bbbb" {
		t.Errorf("local.ini = %q; want %q", got, "bbbb")
	}
	if len(w.syncer.racy) != 0 {
		t.Errorf("racy set %v; want empty once the file settled", w.syncer.racy)
	}
}

// A racy file whose content did not change is fetched again and compared, and that is
// all: no change is reported or logged. It leaves the racy set at the first pass that
// sees its time more than the window old, and is not fetched again after that.
func TestRacyUnchangedFileIsNotAChange(t *testing.T) {
	r, w, clock, sec := racyRig(t)
	logBefore := readFile(t, r.cfg.LogFile)
	local := filepath.Join(r.dst, "conf.d/local.ini")
	ctime0 := ctimeOf(t, local)
	if got, want := w.syncer.racy, "conf.d/local.ini"; len(got) != 1 || !got[want] {
		t.Fatalf("racy set after a fetch within the file's second = %v; want {%s}", got, want)
	}

	for i, tt := range []struct {
		at       time.Duration // after sec
		verified int
		racy     int // racy files after the pass
	}{
		{1 * time.Second, 1, 1},
		{remoteSettle, 1, 1},                               // its time is window old: still racy
		{remoteSettle + time.Second, 1, 0},                 // more than the window: checked once more, then settled
		{remoteSettle + 2*time.Second, 0, 0},               // not fetched again
		{remoteSettle + 2*time.Second + time.Second, 0, 0}, // an idle pass: directories checked only
	} {
		advanceTo(clock, sec.Add(tt.at))
		res := r.once(t, w)
		if len(res.Items) != 0 || res.Changes != 0 {
			t.Errorf("pass %d: items %q, %d changes; want none", i, codes(res.Items), res.Changes)
		}
		if res.Verified != tt.verified || len(w.syncer.racy) != tt.racy {
			t.Errorf("pass %d (sec+%v): verified %d, racy %v; want %d verified, %d racy",
				i, tt.at, res.Verified, w.syncer.racy, tt.verified, tt.racy)
		}
	}
	if got := readFile(t, r.cfg.LogFile); got != logBefore {
		t.Errorf("pass log grew by %q; want nothing for unchanged racy files", strings.TrimPrefix(got, logBefore))
	}
	if ctimeOf(t, local) != ctime0 {
		t.Errorf("local.ini was replaced although its content did not change")
	}
}

// The racy set outlives the process: `lbagent sync --once` at boot, then the worker. A
// new worker on the same target re-checks what the last one fetched within its second,
// even when it starts after the window.
func TestRacySetSurvivesANewProcess(t *testing.T) {
	r, _, _, sec := racyRig(t)
	r.write(t, "conf.d/local.ini", "bbbb", 0o644)
	setTime(t, filepath.Join(r.src, "conf.d/local.ini"), sec.Add(700*time.Millisecond))

	clock := clockwork.NewFakeClockAt(sec.Add(time.Minute))
	w := clockedWorker(t, r, clock)
	res := r.once(t, w)
	if got := codes(res.Items); len(got) != 1 || got[0] != ">fc........ conf.d/local.ini" {
		t.Errorf("new worker's first pass items = %q; want [\">fc........ conf.d/local.ini\"]", got)
	}
	if got := readFile(t, filepath.Join(r.dst, "conf.d/local.ini")); got != "bbbb" {
		t.Errorf("local.ini = %q; want %q", got, "bbbb")
	}
	clock.Advance(time.Second)
	if res := r.once(t, w); res.Verified != 0 || len(res.Items) != 0 {
		t.Errorf("next pass: verified %d, items %q; want an idle pass", res.Verified, codes(res.Items))
	}
	b, err := os.ReadFile(filepath.Join(stateDirFor(r.cfg.StateDir, r.dst), racyFile))
	if err != nil || len(b) != 0 {
		t.Errorf("racy file after the file settled = %q, %v; want empty", b, err)
	}
}

func ctimeOf(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := statT(fi)
	return st.Ctim.Nano()
}

// A racy file is stat-ed on every pass although its directory's time did not move: a
// rewrite in place with a new size and time is seen as such at the next pass, without
// listing a directory.
func TestRacyFileStatedWithoutItsDirectory(t *testing.T) {
	r, w, clock, sec := racyRig(t)
	r.write(t, "conf.d/local.ini", "bbbbbb", 0o644)
	setTime(t, filepath.Join(r.src, "conf.d/local.ini"), sec.Add(2*time.Second))
	advanceTo(clock, sec.Add(2500*time.Millisecond))
	res := r.once(t, w)
	if got := codes(res.Items); len(got) != 1 || got[0] != ">f.st...... conf.d/local.ini" {
		t.Errorf("items = %q; want [\">f.st...... conf.d/local.ini\"]", got)
	}
	if res.FullList || res.Listed != 0 || res.Checked != 3 || res.Verified != 0 {
		t.Errorf("full %v, listed %d, checked %d, verified %d; want no listing, 2 directories and the file checked, nothing verified",
			res.FullList, res.Listed, res.Checked, res.Verified)
	}
	if got := readFile(t, filepath.Join(r.dst, "conf.d/local.ini")); got != "bbbbbb" {
		t.Errorf("local.ini = %q; want %q", got, "bbbbbb")
	}
	if !w.syncer.racy["conf.d/local.ini"] {
		t.Errorf("racy set %v; want local.ini still racy (fetched within its new second)", w.syncer.racy)
	}
}
