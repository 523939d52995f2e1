package lbadapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
)

// DefaultPoll is how often Drain and Enable look at the balancer while they wait.
const DefaultPoll = 500 * time.Millisecond

// ErrLifted is returned by Drain when the balancer shows the node UP again while Drain waits:
// someone (another operator, or an agent's "ready") lifted the drain.
var ErrLifted = errors.New("drain lifted while waiting")

// ErrTimeout is matched (errors.Is) by the *TimeoutError of a wait that ran out of time.
var ErrTimeout = errors.New("timed out")

// TimeoutError says what the node looked like when a wait gave up.
type TimeoutError struct {
	Op     string // "drain" or "enable"
	Node   string
	Waited time.Duration
	Last   ServerState
}

func (e *TimeoutError) Error() string {
	if e.Op == "drain" {
		return fmt.Sprintf("drain %s: timed out after %s with %d sessions left (balancer state %s)",
			e.Node, e.Waited.Round(time.Second), e.Last.Sessions, e.Last.Status)
	}
	return fmt.Sprintf("enable %s: timed out after %s waiting for UP (balancer state %s)",
		e.Node, e.Waited.Round(time.Second), e.Last.Status)
}

// Unwrap makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Unwrap() error { return ErrTimeout }

// Progress is reported after every look at the balancer while waiting.
type Progress struct {
	Op      string
	Node    string
	State   ServerState
	Elapsed time.Duration
}

// Wait says whether and how Drain and Enable wait for the balancer to reach the goal.
type Wait struct {
	NoWait   bool            // return right after the state change
	Timeout  time.Duration   // give up after this long (a *TimeoutError); 0 = until ctx is done
	Poll     time.Duration   // default DefaultPoll
	Progress func(Progress)  // called after every poll; may be nil
	Clock    clockwork.Clock // nil = the real clock
}

// Drain tells the balancer to drain the node and waits until no session is left (and the
// balancer does not show the node UP). It returns the last state seen.
func Drain(ctx context.Context, b Balancer, n Node, w Wait) (ServerState, error) {
	if err := b.Drain(ctx, n); err != nil {
		return ServerState{}, fmt.Errorf("drain %s: %w", n.Name, err)
	}
	seen := false // the balancer has shown the node out of rotation
	s, err := wait(ctx, b, n, "drain", w, func(s ServerState) (bool, error) {
		up := s.State == StateUp || s.State == StateNoLB
		if up && seen {
			return false, fmt.Errorf("drain %s: %w (balancer shows %s again)", n.Name, ErrLifted, s.Status)
		}
		seen = seen || !up
		return s.Sessions == 0 && !up, nil
	})
	return s, err
}

// Enable tells the balancer to give the node traffic again and waits until it shows the node
// UP (which needs the node's health check to pass). It returns the last state seen.
func Enable(ctx context.Context, b Balancer, n Node, w Wait) (ServerState, error) {
	if err := b.Enable(ctx, n); err != nil {
		return ServerState{}, fmt.Errorf("enable %s: %w", n.Name, err)
	}
	return wait(ctx, b, n, "enable", w, func(s ServerState) (bool, error) { return s.State == StateUp, nil })
}

func wait(ctx context.Context, b Balancer, n Node, op string, w Wait, done func(ServerState) (bool, error)) (ServerState, error) {
	clock := w.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	poll := w.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	start := clock.Now()
	var deadline <-chan time.Time
	if w.Timeout > 0 && !w.NoWait {
		t := clock.NewTimer(w.Timeout)
		defer t.Stop()
		deadline = t.Chan()
	}
	for {
		s, err := b.State(ctx, n)
		if err != nil {
			return s, fmt.Errorf("%s %s: %w", op, n.Name, err)
		}
		if w.Progress != nil {
			w.Progress(Progress{Op: op, Node: n.Name, State: s, Elapsed: clock.Since(start)})
		}
		ok, err := done(s)
		if err != nil {
			return s, err
		}
		if w.NoWait || ok {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("%s %s: %w", op, n.Name, ctx.Err())
		case <-deadline:
			return s, &TimeoutError{Op: op, Node: n.Name, Waited: clock.Since(start), Last: s}
		case <-clock.After(poll):
		}
	}
}
