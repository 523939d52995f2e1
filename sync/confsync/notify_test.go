package confsync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveEnv makes this test binary act as "lbagent sync serve" (see TestMain).
const serveEnv = "LBKIT_SYNC_SERVE"

// poll calls cond until it holds or a generous deadline passes (then the test fails).
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With lbagent sync serve on the primary, changes reach this node through notices: the
// worker's interval and full listing are an hour here, so nothing else could bring them.
func TestChangeNoticesDriveThePass(t *testing.T) {
	r := newRig(t)
	r.write(t, "conf.d/local.ini", "v1", 0o644)
	r.write(t, "signer/keyconf.xml", "keyconf v1", 0o644)
	r.cfg.Interval, r.cfg.FullScan = time.Hour, time.Hour
	r.cfg.ServeCommand = serveEnv + "=1 " + shellQuote(os.Args[0])
	w := r.worker(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	poll(t, "first pass", func() bool { return w.Status().LastSuccess != nil })
	poll(t, "change notices", func() bool { return w.Status().Notify == "inotify" })
	arrived := func(rel, want string) func() bool {
		return func() bool {
			b, err := os.ReadFile(filepath.Join(r.dst, rel))
			return err == nil && string(b) == want
		}
	}
	// Replaced by rename, as X-Road writes its files.
	r.write(t, "signer/keyconf.xml.tmp", "keyconf v2", 0o644)
	if err := os.Rename(filepath.Join(r.src, "signer/keyconf.xml.tmp"), filepath.Join(r.src, "signer/keyconf.xml")); err != nil {
		t.Fatal(err)
	}
	poll(t, "keyconf.xml replaced by rename", arrived("signer/keyconf.xml", "keyconf v2"))
	// Rewritten in place (moves no directory's time).
	if err := os.WriteFile(filepath.Join(r.src, "conf.d/local.ini"), []byte("v2 longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "local.ini rewritten in place", arrived("conf.d/local.ini", "v2 longer"))
	// A new directory with a file, then a file in it (the new directory is watched too).
	r.write(t, "services/a/b.xml", "b", 0o644)
	poll(t, "new directory", arrived("services/a/b.xml", "b"))
	r.write(t, "services/a/c.xml", "c", 0o644)
	poll(t, "file in the new directory", arrived("services/a/c.xml", "c"))
	// Excluded paths send no notice and are not copied.
	r.write(t, "x.tmp", "tmp", 0o644)
	r.write(t, "marker", "m", 0o644)
	poll(t, "marker", arrived("marker", "m"))
	if exists(filepath.Join(r.dst, "x.tmp")) {
		t.Errorf("excluded x.tmp copied")
	}
}

// A primary without lbagent: the worker says why and polls at its interval.
func TestNoServeOnPrimaryFallsBackToPolling(t *testing.T) {
	r := newRig(t)
	r.write(t, "a.ini", "1", 0o644)
	r.cfg.ServeCommand = "/nonexistent/lbagent sync serve"
	w := r.worker(t)
	r.once(t, w)
	poll(t, "the reason for polling", func() bool { return strings.Contains(w.Status().Notify, "no lbagent on the primary") })
	if st := w.Status(); !strings.HasPrefix(st.Notify, "polling: ") {
		t.Errorf("notify = %q; want polling with the reason", st.Notify)
	}
	r.write(t, "a.ini", "22", 0o644)
	r.once(t, w)
	if got := readFile(t, filepath.Join(r.dst, "a.ini")); got != "22" {
		t.Errorf("a.ini = %q; want %q by polling", got, "22")
	}
}

func TestSafetyInterval(t *testing.T) {
	r := newRig(t)
	r.cfg.Interval, r.cfg.FullScan = time.Second, 10*time.Second
	w := r.worker(t)
	if got := w.safetyInterval(); got != time.Second {
		t.Errorf("polling: %s; want the interval", got)
	}
	w.syncer.notify.setState("inotify")
	if got := w.safetyInterval(); got != 10*time.Second {
		t.Errorf("with change notices: %s; want the full-scan interval", got)
	}
	r.cfg.Interval = time.Minute
	w2 := r.worker(t)
	w2.syncer.notify.setState("inotify")
	if got := w2.safetyInterval(); got != time.Minute {
		t.Errorf("with change notices and a long interval: %s; want the interval", got)
	}
}
