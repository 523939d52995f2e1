package check

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Runner runs each check in its own goroutine on its own clock: after a pass the check runs
// again PassTTL later, after a failure FailTTL later. A run that exceeds Timeout is published
// as a failure at once, and a hung check never delays another. A run still stuck when the
// next one is due (a read blocked in the kernel, which no context can cancel) is abandoned:
// the next run starts on a fresh goroutine, so the node recovers as soon as the cause is gone.
// At most MaxAbandoned runs of one check are left behind at a time; beyond that the next run
// waits for the oldest stuck one.
type Runner struct {
	mu     sync.RWMutex // guards specs' timing, which SetTiming changes
	specs  []Spec
	clock  clockwork.Clock
	report func(index int, r Result)
}

// Timing is a check's timeout and how long its results are kept.
type Timing struct{ Timeout, PassTTL, FailTTL time.Duration }

// SetTiming gives check index new timing (a configuration reload); zero fields take the
// defaults. It applies from the check's next run: a run in progress keeps its timeout and
// the wait already started is not shortened.
func (r *Runner) SetTiming(index int, t Timing) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp := r.specs[index]
	sp.Timeout, sp.PassTTL, sp.FailTTL = t.Timeout, t.PassTTL, t.FailTTL
	r.specs[index] = sp.withDefaults()
}

func (r *Runner) spec(i int) Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.specs[i]
}

// NewRunner returns a runner that calls report (from the checks' goroutines) with every
// result; index is the check's position in specs.
func NewRunner(specs []Spec, report func(index int, r Result)) *Runner {
	return NewRunnerWithClock(specs, report, clockwork.NewRealClock())
}

// NewRunnerWithClock is NewRunner with an injected clock, for tests.
func NewRunnerWithClock(specs []Spec, report func(index int, r Result), clock clockwork.Clock) *Runner {
	s := make([]Spec, len(specs))
	for i, sp := range specs {
		s[i] = sp.withDefaults()
	}
	return &Runner{specs: s, clock: clock, report: report}
}

// Specs returns the checks with their defaults filled in.
func (r *Runner) Specs() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Spec(nil), r.specs...)
}

// Run runs the checks until ctx is done. It returns when every loop has stopped; a check
// function that ignores its context may still be running then.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range len(r.Specs()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, i)
		}()
	}
	wg.Wait()
}

// MaxAbandoned is how many stuck runs of one check may be left behind at a time.
const MaxAbandoned = 4

func (r *Runner) loop(ctx context.Context, i int) {
	var runs, failures uint64
	var busy chan struct{}    // closed when the previous run's function returned
	var stuck []chan struct{} // abandoned runs, oldest first
	for {
		stuck = stillRunning(stuck)
		if busy != nil && !closed(busy) {
			if len(stuck) < MaxAbandoned {
				stuck = append(stuck, busy)
			} else {
				select { // too many left behind: wait for the oldest
				case <-stuck[0]:
				case <-ctx.Done():
					return
				}
				stuck = append(stillRunning(stuck), busy)
			}
		}
		runs++
		spec := r.spec(i)
		res, done := r.runOnce(ctx, spec)
		busy = done
		if ctx.Err() != nil {
			return
		}
		if !res.OK() {
			failures++
		}
		res.Runs, res.Failures, res.Abandoned = runs, failures, len(stillRunning(stuck))
		r.report(i, res)
		ttl := spec.PassTTL
		if res.Status != StatusPass {
			ttl = spec.FailTTL
		}
		t := r.clock.NewTimer(ttl)
		select {
		case <-t.Chan():
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// stillRunning drops the runs that have returned.
func stillRunning(runs []chan struct{}) []chan struct{} {
	out := runs[:0]
	for _, d := range runs {
		if !closed(d) {
			out = append(out, d)
		}
	}
	return out
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// runOnce runs spec once with its timeout. done is closed when the function has returned,
// which may be after runOnce returned with a timeout result.
func (r *Runner) runOnce(ctx context.Context, spec Spec) (Result, chan struct{}) {
	start := r.clock.Now()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var err error
	var panicked any
	go func() {
		defer close(done)
		defer cancel()
		defer func() { panicked = recover() }()
		err = spec.Run(cctx)
	}()
	timer := r.clock.NewTimer(spec.Timeout)
	defer timer.Stop()
	res := Result{Name: spec.Name, Severity: spec.Severity, Started: start}
	select {
	case <-done:
		res.Duration = r.clock.Since(start)
		switch {
		case panicked != nil:
			res.Status, res.Message, res.Detail = StatusFail, PanicMessage(spec.Name), fmt.Sprintf("panic: %v", panicked)
		case err != nil:
			res.Status = StatusFail
			res.Message, res.Detail = messageAndDetail(err)
		default:
			res.Status = StatusPass
		}
	case <-timer.Chan():
		cancel()
		res.Duration = spec.Timeout
		res.Status, res.Message = StatusFail, TimeoutMessage(spec.Name)
		res.Detail = fmt.Sprintf("no answer within %s", spec.Timeout)
	}
	if res.Status == StatusFail && spec.Severity == Warning {
		res.Status = StatusWarn
	}
	return res, done
}
