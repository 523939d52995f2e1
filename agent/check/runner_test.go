package check

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

type recorder struct{ ch chan indexed }

type indexed struct {
	i int
	r Result
}

func newRecorder() *recorder { return &recorder{ch: make(chan indexed, 100)} }

func (r *recorder) report(i int, res Result) { r.ch <- indexed{i, res} }

// next waits for the next result (the test's own deadline guards a hang).
func (r *recorder) next(t *testing.T) indexed {
	t.Helper()
	select {
	case x := <-r.ch:
		return x
	case <-time.After(10 * time.Second):
		t.Fatal("no result reported")
		return indexed{}
	}
}

func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case x := <-r.ch:
		t.Fatalf("unexpected result %+v", x)
	default:
	}
}

func startRunner(t *testing.T, specs []Spec) (*recorder, *clockwork.FakeClock, context.Context) {
	t.Helper()
	rec := newRecorder()
	clock := clockwork.NewFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	r := NewRunnerWithClock(specs, rec.report, clock)
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return rec, clock, ctx
}

// advance moves the fake clock once n goroutines wait on it.
func advance(t *testing.T, ctx context.Context, clock *clockwork.FakeClock, n int, d time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(wctx, n); err != nil {
		t.Fatalf("waiting for %d timers: %v", n, err)
	}
	clock.Advance(d)
}

func TestPassIsKeptForPassTTL(t *testing.T) {
	var runs atomic.Int32
	rec, clock, ctx := startRunner(t, []Spec{{Name: "ok", Run: func(context.Context) error { runs.Add(1); return nil }}})
	if got := rec.next(t).r; got.Status != StatusPass || got.Runs != 1 {
		t.Fatalf("first result %+v; want pass, run 1", got)
	}
	advance(t, ctx, clock, 1, DefaultPassTTL-time.Millisecond)
	rec.none(t)
	advance(t, ctx, clock, 1, time.Millisecond)
	if got := rec.next(t).r; got.Runs != 2 {
		t.Fatalf("after %v: runs %d; want 2", DefaultPassTTL, got.Runs)
	}
}

func TestFailureIsKeptForFailTTL(t *testing.T) {
	rec, clock, ctx := startRunner(t, []Spec{{Name: "db", Run: func(context.Context) error {
		return Fail("ServerConf is not available", errors.New("connection refused"))
	}}})
	got := rec.next(t).r
	if got.Status != StatusFail || got.Message != "ServerConf is not available" || got.Detail != "connection refused" {
		t.Fatalf("got %+v; want fail with message and detail", got)
	}
	advance(t, ctx, clock, 1, DefaultFailTTL-time.Second)
	rec.none(t)
	advance(t, ctx, clock, 1, time.Second)
	if got := rec.next(t).r; got.Runs != 2 || got.Failures != 2 {
		t.Fatalf("after %v: %+v; want run 2, failures 2", DefaultFailTTL, got)
	}
}

func TestTimeoutIsAFailureAndHungCheckIsAbandoned(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var started atomic.Int32
	var fixed atomic.Bool
	// Like a read of a FIFO or a hung filesystem: ignores ctx until the cause is gone.
	hang := func(context.Context) error {
		started.Add(1)
		if !fixed.Load() {
			<-release
		}
		return nil
	}
	var okRuns atomic.Int32
	rec, clock, ctx := startRunner(t, []Spec{
		{Name: "hung", Run: hang},
		{Name: "fast", Run: func(context.Context) error { okRuns.Add(1); return nil }},
	})
	// fast reports at once; hung waits on its timeout timer.
	if x := rec.next(t); x.i != 1 || x.r.Status != StatusPass {
		t.Fatalf("first result %+v; want fast pass", x)
	}
	waitStarted(t, &started, 1)
	// Two timers wait: hung's timeout (5 s) and fast's pass TTL (2 s).
	for i := 0; i < 2; i++ {
		advance(t, ctx, clock, 2, DefaultPassTTL)
		if x := rec.next(t); x.i != 1 {
			t.Fatalf("got %+v; want fast's result while hung is hung", x)
		}
	}
	advance(t, ctx, clock, 2, time.Second) // 5 s since hung started
	var timedOut Result
	for timedOut.Name == "" {
		if x := rec.next(t); x.i == 0 {
			timedOut = x.r
		}
	}
	if timedOut.Status != StatusFail || timedOut.Message != "Fetching health check response timed out for: hung" {
		t.Fatalf("got %+v; want X-Road's timeout message", timedOut)
	}
	if n := started.Load(); n != 1 {
		t.Fatalf("hung check started %d times before its failure TTL; want 1", n)
	}
	// The cause goes away; 30 s later the check is due again: its first run is still stuck
	// in the "kernel", so the next run starts on a fresh goroutine and passes.
	fixed.Store(true)
	var recovered Result
	for i := 0; i < 15; i++ { // 30 s: hung's failure TTL ends with the last step
		advance(t, ctx, clock, 2, DefaultPassTTL)
		for x := rec.next(t); x.i != 1; x = rec.next(t) {
			recovered = x.r // hung's result may come before fast's
		}
	}
	for recovered.Name == "" {
		if x := rec.next(t); x.i == 0 {
			recovered = x.r
		}
	}
	if recovered.Status != StatusPass || recovered.Abandoned != 1 || started.Load() != 2 {
		t.Fatalf("after the failure TTL: %+v, %d starts; want a pass on a fresh run with 1 run abandoned", recovered, started.Load())
	}
}

func TestAbandonedRunsAreCapped(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int32
	rec, clock, ctx := startRunner(t, []Spec{{Name: "hung", Timeout: time.Second, FailTTL: time.Second,
		Run: func(context.Context) error { started.Add(1); <-release; return nil }}})
	// Each cycle: 1 s timeout, 1 s failure TTL, then a fresh run, until MaxAbandoned are stuck.
	for i := 1; i <= MaxAbandoned+1; i++ {
		waitStarted(t, &started, int32(i))
		advance(t, ctx, clock, 1, time.Second) // timeout
		if r := rec.next(t).r; r.Status != StatusFail || r.Abandoned != i-1 {
			t.Fatalf("run %d: %+v; want a timeout with %d abandoned", i, r, i-1)
		}
		advance(t, ctx, clock, 1, time.Second) // failure TTL
	}
	// MaxAbandoned runs are left behind and one more is stuck: the loop waits, nothing starts.
	rec.none(t)
	if n := started.Load(); n != MaxAbandoned+1 {
		t.Fatalf("started %d runs; want %d (cap reached)", n, MaxAbandoned+1)
	}
	close(release) // every stuck run returns; the loop goes on
	waitStarted(t, &started, MaxAbandoned+2)
}

// waitStarted waits until the check function has been entered n times.
func waitStarted(t *testing.T, started *atomic.Int32, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for started.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := started.Load(); got != n {
		t.Fatalf("check started %d times; want %d", got, n)
	}
}

func TestPanicIsAFailure(t *testing.T) {
	rec, _, _ := startRunner(t, []Spec{{Name: "boom", Run: func(context.Context) error { panic("nil map") }}})
	got := rec.next(t).r
	if got.Status != StatusFail || got.Message != "Fetching health check response failed for: boom" || got.Detail != "panic: nil map" {
		t.Fatalf("got %+v; want X-Road's failure message and the panic as detail", got)
	}
}

func TestWarningSeverity(t *testing.T) {
	rec, _, _ := startRunner(t, []Spec{{Name: "sync", Severity: Warning, Run: func(context.Context) error {
		return errors.New("last sync 10m ago")
	}}})
	got := rec.next(t).r
	if got.Status != StatusWarn || !got.OK() || got.Message != "last sync 10m ago" {
		t.Fatalf("got %+v; want warn, OK, message", got)
	}
}

// TestSetTimingAppliesFromTheNextRun: a reload's new timeout and TTL take effect at the
// check's next run.
func TestSetTimingAppliesFromTheNextRun(t *testing.T) {
	var runs atomic.Int32
	release := make(chan struct{})
	defer close(release)
	rec := newRecorder()
	clock := clockwork.NewFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	r := NewRunnerWithClock([]Spec{{Name: "db", Run: func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			return nil
		}
		<-release // hangs from the second run on
		return nil
	}}}, rec.report, clock)
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if got := rec.next(t).r; got.Status != StatusPass {
		t.Fatalf("first result %+v; want pass", got)
	}
	r.SetTiming(0, Timing{Timeout: time.Second, FailTTL: 7 * time.Second})
	if got := r.Specs()[0]; got.Timeout != time.Second || got.PassTTL != DefaultPassTTL || got.FailTTL != 7*time.Second {
		t.Fatalf("spec after SetTiming %+v; want timeout 1s, pass TTL default, fail TTL 7s", got)
	}
	advance(t, ctx, clock, 1, DefaultPassTTL) // the wait started before SetTiming
	advance(t, ctx, clock, 1, time.Second)    // the new timeout, not 5 s
	if got := rec.next(t).r; got.Status != StatusFail || got.Message != TimeoutMessage("db") {
		t.Fatalf("second result %+v; want the timeout failure after 1 s", got)
	}
	advance(t, ctx, clock, 1, 7*time.Second-time.Millisecond)
	rec.none(t)
}
