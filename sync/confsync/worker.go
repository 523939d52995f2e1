package confsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/internal/backoff"
)

// EventKind says what an Event reports.
type EventKind string

const (
	EventPass    EventKind = "pass"    // a pass changed something
	EventIdle    EventKind = "idle"    // a pass found nothing to do
	EventError   EventKind = "error"   // a pass failed; nothing was changed
	EventPaused  EventKind = "paused"  // the pause file appeared
	EventResumed EventKind = "resumed" // the pause file went away
	EventLog     EventKind = "log"     // the pass log could not be written
)

// Event is reported to Worker.Report so the daemon or command can log it (this package
// never logs itself).
type Event struct {
	Kind   EventKind
	Result Result
	Err    error
}

// Status is the worker's state for /status (JSON).
type Status struct {
	Primary         string     `json:"primary"`
	Target          string     `json:"target"`
	Paused          bool       `json:"paused"`
	PauseFile       string     `json:"pause_file"`
	Connected       bool       `json:"connected"`
	LastSuccess     *time.Time `json:"last_success,omitempty"`
	AgeSeconds      *float64   `json:"age_seconds,omitempty"`
	FilesChanged    int        `json:"files_changed"` // by the last successful pass
	LastChange      *time.Time `json:"last_change,omitempty"`
	LastChangeFiles int        `json:"last_change_files"`
	LastAttempt     *time.Time `json:"last_attempt,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	Passes          uint64     `json:"passes"`
	Failures        uint64     `json:"failures"`
	Refused         []Refusal  `json:"refused,omitempty"`
	// Skipped: entries of the primary the last successful pass could not read (the rest
	// was applied); rsync's exit code 23.
	Skipped []Skip `json:"skipped,omitempty"`
	// Notify is how changes are noticed: "inotify" (lbagent sync serve on the primary) or
	// "polling: <why>".
	Notify  string `json:"notify"`
	Warning string `json:"warning,omitempty"` // what Check reports, "" when fine
}

// Worker runs passes every Interval over one kept SSH connection, honours the pause file,
// writes the pass log, and keeps the state behind Status, Check and the metrics.
type Worker struct {
	cfg    Config
	syncer *Syncer
	log    *passLog
	clock  clockwork.Clock
	// Report, when set, receives every event (from the goroutine calling Run or Once).
	Report func(Event)

	mu      sync.Mutex
	started time.Time
	st      Status
	m       counters
}

type counters struct {
	ok, failed, paused uint64
	changed, received  int64
	lastDuration       time.Duration
}

// NewWorker validates cfg and returns a worker (not connected yet).
func NewWorker(cfg Config) (*Worker, error) {
	return NewWorkerWithClock(cfg, clockwork.NewRealClock())
}

// NewWorkerWithClock is NewWorker with an injected clock (the worker's times and waits and its
// passes' times), for tests.
func NewWorkerWithClock(cfg Config, clock clockwork.Clock) (*Worker, error) {
	s, err := NewSyncer(cfg)
	if err != nil {
		return nil, err
	}
	s.clock = clock
	w := &Worker{cfg: cfg, syncer: s, log: newPassLog(cfg.LogFile), clock: clock}
	w.started = w.clock.Now()
	w.st = Status{Primary: cfg.Primary, Target: s.target, PauseFile: cfg.PauseFile}
	return w, nil
}

// Run passes until ctx ends. After failures it waits longer (doubling up to 30 s) so a
// primary that is down is not hammered; it returns nil when ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	defer w.syncer.Close()
	fails := 0
	for {
		_, err := w.Once(ctx)
		if err != nil && !errors.Is(err, ErrPaused) {
			fails++
		} else {
			fails = 0
		}
		t := w.clock.NewTimer(retryWait(w.safetyInterval(), fails, err))
		wake := w.syncer.Wake()
		if fails > 0 {
			wake = nil // after a failure the back-off holds, notices or not
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.Chan():
		case <-wake:
			t.Stop()
			settle(ctx, w.clock, wake)
		}
	}
}

// safetyInterval is the time between passes without a notice: the interval, or while
// change notices arrive (lbagent sync serve on the primary) the full-scan interval, as
// every change then wakes the worker itself and the periodic pass (checking directories,
// a full listing every minute) is only the safety net.
func (w *Worker) safetyInterval() time.Duration {
	if w.syncer.notify.State() == "inotify" {
		return max(w.cfg.Interval, w.syncer.cfg.FullScan)
	}
	return w.cfg.Interval
}

// A change notice usually comes in a burst (a rewrite in place: truncate, then write; an
// editor: write, chmod, rename): the pass waits until noticeQuiet passes without one, at
// most noticeMaxWait, so one pass takes the whole burst.
const (
	noticeQuiet   = 10 * time.Millisecond
	noticeMaxWait = 50 * time.Millisecond
)

func settle(ctx context.Context, clock clockwork.Clock, wake <-chan struct{}) {
	limit := clock.NewTimer(noticeMaxWait)
	defer limit.Stop()
	for {
		quiet := clock.NewTimer(noticeQuiet)
		select {
		case <-wake:
			quiet.Stop()
			continue
		case <-quiet.Chan():
		case <-limit.Chan():
			quiet.Stop()
		case <-ctx.Done():
			quiet.Stop()
		}
		return
	}
}

// Backoff after failures: doubling from the interval up to maxBackoff; a pass refused for
// lack of space waits noSpaceBackoff (freeing space takes an operator).
const (
	maxBackoff     = 30 * time.Second
	noSpaceBackoff = 10 * time.Minute
)

// retryWait is the time before the next pass after fails failures in a row (err is the
// last pass's error).
func retryWait(interval time.Duration, fails int, err error) time.Duration {
	if fails == 0 {
		return interval
	}
	if errors.Is(err, ErrNoSpace) {
		return max(noSpaceBackoff, interval)
	}
	return backoff.Policy{Min: interval, Max: maxBackoff}.Delay(fails)
}

// Once runs one pass unless the pause file exists (then it returns ErrPaused), and
// records the outcome in Status, the metrics and the pass log.
func (w *Worker) Once(ctx context.Context) (Result, error) {
	if w.cfg.PauseFile != "" {
		if _, err := os.Lstat(w.cfg.PauseFile); err == nil {
			w.setPaused(true)
			return Result{}, fmt.Errorf("%w: %s exists", ErrPaused, w.cfg.PauseFile)
		}
	}
	w.setPaused(false)
	res, err := w.syncer.Pass(ctx)
	end := w.clock.Now()
	w.mu.Lock()
	w.st.LastAttempt = &end
	w.st.Connected = w.syncer.Connected()
	w.m.lastDuration = res.Duration
	if err != nil {
		w.st.LastError = err.Error()
		w.st.Failures++
		w.m.failed++
	} else {
		start := res.Start
		w.st.LastSuccess = &start
		w.st.LastError = ""
		w.st.Passes++
		w.st.FilesChanged = res.Changes
		w.st.Refused = res.Refused
		w.st.Skipped = res.Skipped
		w.m.ok++
		w.m.changed += int64(res.Changes)
		w.m.received += res.Received
		if res.Changes > 0 {
			w.st.LastChange, w.st.LastChangeFiles = &end, res.Changes
		}
	}
	w.mu.Unlock()
	if lerr := w.log.pass(end, res, err); lerr != nil {
		w.report(Event{Kind: EventLog, Err: lerr})
	}
	switch {
	case err != nil:
		w.report(Event{Kind: EventError, Result: res, Err: err})
	case len(res.Items) > 0 || len(res.Refused) > 0 || len(res.Skipped) > 0 || res.Recovered:
		w.report(Event{Kind: EventPass, Result: res})
	default:
		w.report(Event{Kind: EventIdle, Result: res})
	}
	return res, err
}

func (w *Worker) setPaused(p bool) {
	w.mu.Lock()
	changed := w.st.Paused != p
	w.st.Paused = p
	if p {
		w.m.paused++
	}
	w.mu.Unlock()
	if !changed {
		return
	}
	msg, kind := "sync resumed: "+w.cfg.PauseFile+" removed", EventResumed
	if p {
		msg, kind = "sync paused: "+w.cfg.PauseFile+" exists", EventPaused
		_ = w.syncer.Close() // no connection is held while paused
	}
	if err := w.log.note(w.clock.Now(), msg); err != nil {
		w.report(Event{Kind: EventLog, Err: err})
	}
	w.report(Event{Kind: kind})
}

func (w *Worker) report(e Event) {
	if w.Report != nil {
		w.Report(e)
	}
}

// Status returns a snapshot of the worker's state.
func (w *Worker) Status() Status {
	w.mu.Lock()
	st := w.st
	now := w.clock.Now()
	w.mu.Unlock()
	st.Refused = append([]Refusal(nil), st.Refused...)
	st.Skipped = append([]Skip(nil), st.Skipped...)
	st.Notify = w.syncer.notify.State()
	if st.LastSuccess != nil {
		age := now.Sub(*st.LastSuccess).Seconds()
		st.AgeSeconds = &age
	}
	if err := w.check(st, now); err != nil {
		st.Warning = err.Error()
	}
	return st
}

// CheckName is the name the daemon registers Check under (with Severity Warning).
const CheckName = "Config sync status"

// Check fails when sync is paused or the last successful pass is older than MaxAgeWarning
// (or none succeeded within MaxAgeWarning of the start). Register it as a warning: a
// secondary keeps serving while the primary is away.
func (w *Worker) Check(ctx context.Context) error {
	w.mu.Lock()
	st := w.st
	w.mu.Unlock()
	return w.check(st, w.clock.Now())
}

func (w *Worker) check(st Status, now time.Time) error {
	if st.Paused {
		return fmt.Errorf("Config sync is paused (%s exists)", st.PauseFile)
	}
	if n := len(st.Skipped); n > 0 && st.LastError == "" {
		return fmt.Errorf("Config sync skipped %d unreadable file(s) on the primary, first %s: %s", n, escapeName(st.Skipped[0].Path), st.Skipped[0].Reason)
	}
	if w.cfg.MaxAgeWarning <= 0 {
		return nil
	}
	last := ""
	if st.LastError != "" {
		last = ": " + st.LastError
	}
	if st.LastSuccess == nil {
		if since := now.Sub(w.started); since > w.cfg.MaxAgeWarning {
			return fmt.Errorf("Config sync has not succeeded since start %s ago%s", since.Round(time.Second), last)
		}
		return nil
	}
	if age := now.Sub(*st.LastSuccess); age > w.cfg.MaxAgeWarning {
		return fmt.Errorf("Config sync is stale: last success %s ago (warning after %s)%s",
			age.Round(time.Second), w.cfg.MaxAgeWarning, last)
	}
	return nil
}

// Recover completes a commit that a crashed process left on the target (and removes its
// staging area) before anything reads the tree; every pass does the same first. It
// reports whether a journal was replayed.
func (w *Worker) Recover() (bool, error) { return w.syncer.Recover() }

// Close drops the SSH connection (Run does this itself when it returns).
func (w *Worker) Close() error { return w.syncer.Close() }
