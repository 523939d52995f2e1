package lbadapters

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
)

// DefaultPoll is how often Drain and Enable look at the balancer while they wait.
const DefaultPoll = 500 * time.Millisecond

// ErrLifted is returned by Drain when the balancer shows the node UP again while Drain waits:
// someone (another operator, or an agent's "ready") lifted the drain.
var ErrLifted = errors.New("drain lifted while waiting")

// ErrKeptMaint is returned by a Balancer's Drain when the node is in maintenance (HAProxy's
// MAINT) and the adapter left it so: a drain would take it out of maintenance, turning its
// health checks and persistent connections back on. Drain then waits as usual.
var ErrKeptMaint = errors.New("already MAINT, kept")

// Sessions is "1 session" or "3 sessions".
func Sessions(n int) string {
	if n == 1 {
		return "1 session"
	}
	return fmt.Sprintf("%d sessions", n)
}

// InterruptedError is the error of a drain or enable whose ctx ended while it waited (an
// operator's Ctrl-C): it says what state the node is left in. It matches ctx's error.
type InterruptedError struct {
	Op   string // "drain" or "enable"
	Node string // the node, with " [balancer]" when the balancer has a name
	Name string // the node alone
	Last ServerState
	// Unseen: the balancer never answered (the ctx ended during the change or the first
	// look), so Last is empty and the state is not known.
	Unseen bool
	Err    error // ctx.Err()
}

func (e *InterruptedError) Error() string {
	if e.Unseen {
		return fmt.Sprintf("%s %s: interrupted before the balancer answered; \"lbadapter status\" shows %s's state", e.Op, e.Node, e.Name)
	}
	s := fmt.Sprintf("%s %s: interrupted; %s ", e.Op, e.Node, e.Name)
	if e.Op == "drain" {
		s += "stays " + e.Last.Words()
	} else {
		s += "is enabled, the balancer shows " + e.Last.Words()
	}
	if e.Last.Sessions != NotCounted && e.Op == "drain" {
		s += ", " + Sessions(e.Last.Sessions) + " left"
	}
	return s
}

// Unwrap makes errors.Is(err, context.Canceled) true.
func (e *InterruptedError) Unwrap() error { return e.Err }

// ErrTimeout is matched (errors.Is) by the *TimeoutError of a wait that ran out of time.
var ErrTimeout = errors.New("timed out")

// TimeoutError says what the node looked like when a wait gave up.
type TimeoutError struct {
	Op     string // "drain" or "enable"
	Node   string // the node, with " [balancer]" when the balancer has a name
	Waited time.Duration
	Last   ServerState
}

func (e *TimeoutError) Error() string {
	waited := e.Waited.Round(time.Second)
	if e.Op == "drain" {
		if e.Last.Sessions == NotCounted {
			return fmt.Sprintf("drain %s: timed out after %s, still %s", e.Node, waited, e.Last.Words())
		}
		return fmt.Sprintf("drain %s: timed out after %s with %s left (balancer state %s)",
			e.Node, waited, Sessions(e.Last.Sessions), e.Last.Words())
	}
	s := fmt.Sprintf("enable %s: timed out after %s waiting for UP (balancer state %s", e.Node, waited, e.Last.Words())
	if e.Last.Description != "" {
		s += ": " + e.Last.Description
	}
	return s + ")"
}

// Unwrap makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Unwrap() error { return ErrTimeout }

// Progress is reported after every look at the balancer while waiting.
type Progress struct {
	Op       string
	Node     string
	Balancer string // the balancer's name; "" from Drain and Enable
	State    ServerState
	Elapsed  time.Duration
}

// String is a progress line: "drain ss2 [haproxy]: DRAIN, 3 sessions left, 12.5s elapsed",
// "drain ss2 [nlb]: draining, 45s of up to 300s" (ELBv2's deregistration delay),
// "enable ss2 [nlb]: unhealthy (Target.ResponseCodeMismatch: Health checks failed with these codes: [503]), 4s elapsed".
func (p Progress) String() string {
	var b strings.Builder
	b.WriteString(p.Op + " " + p.Node)
	if p.Balancer != "" {
		b.WriteString(" [" + p.Balancer + "]")
	}
	b.WriteString(": " + p.State.Status)
	// The balancer's reason says why a node is not (yet) in service; on the way out of
	// service (draining, unused) the state says it all.
	if down := p.State.State == StateDown || p.State.State == StateUnknown; down && p.State.Reason != "" {
		b.WriteString(" (" + p.State.Reason)
		if p.State.Description != "" {
			b.WriteString(": " + p.State.Description)
		}
		b.WriteString(")")
	}
	if p.State.Sessions != NotCounted {
		b.WriteString(", " + Sessions(p.State.Sessions) + " left")
	}
	if p.Op == "drain" && p.State.DrainLimit > 0 && p.State.State == StateDrain {
		fmt.Fprintf(&b, ", %ds of up to %ds", int(p.Elapsed.Seconds()), int(p.State.DrainLimit.Seconds()))
	} else {
		fmt.Fprintf(&b, ", %s elapsed", p.Elapsed.Round(100*time.Millisecond))
	}
	return b.String()
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
// balancer does not show the node UP), or, on a balancer that does not count sessions, until
// it shows the node out of service (MAINT). It returns the last state seen.
// A node the balancer keeps in maintenance (ErrKeptMaint) is left so.
func Drain(ctx context.Context, b Balancer, n Node, w Wait) (ServerState, error) {
	o := drain(ctx, Named{Balancer: b}, n, w)
	return o.State, o.Err
}

func drain(ctx context.Context, b Named, n Node, w Wait) Outcome {
	label := nodeLabel(n, b.Name)
	kept := false
	if err := b.Drain(ctx, n); errors.Is(err, ErrKeptMaint) {
		kept = true
	} else if ctx.Err() != nil {
		return Outcome{Balancer: b.Name, Err: &InterruptedError{Op: "drain", Node: label, Name: n.Name, Unseen: true, Err: ctx.Err()}}
	} else if err != nil {
		return Outcome{Balancer: b.Name, Err: fmt.Errorf("drain %s: %w", label, err)}
	}
	seen := false // the balancer has shown the node out of rotation
	s, err := wait(ctx, b, n, "drain", w, func(s ServerState) (bool, error) {
		up := s.State == StateUp || s.State == StateNoLB
		if up && seen {
			return false, fmt.Errorf("drain %s: %w (balancer shows %s again)", label, ErrLifted, s.Words())
		}
		seen = seen || !up
		// Done when out of rotation with no session left; a balancer that does not count
		// sessions (ELBv2) is done once the node is out of service (unused).
		return !up && (s.Sessions == 0 || s.Sessions == NotCounted && s.State == StateMaint), nil
	})
	return Outcome{Balancer: b.Name, State: s, KeptMaint: kept, Err: err}
}

// Enable tells the balancer to give the node traffic again and waits until it shows the node
// UP (which needs the node's health check to pass). It returns the last state seen.
func Enable(ctx context.Context, b Balancer, n Node, w Wait) (ServerState, error) {
	o := enable(ctx, Named{Balancer: b}, n, w)
	return o.State, o.Err
}

func enable(ctx context.Context, b Named, n Node, w Wait) Outcome {
	if err := b.Enable(ctx, n); err != nil {
		if ctx.Err() != nil {
			return Outcome{Balancer: b.Name, Err: &InterruptedError{Op: "enable", Node: nodeLabel(n, b.Name), Name: n.Name, Unseen: true, Err: ctx.Err()}}
		}
		return Outcome{Balancer: b.Name, Err: fmt.Errorf("enable %s: %w", nodeLabel(n, b.Name), err)}
	}
	s, err := wait(ctx, b, n, "enable", w, func(s ServerState) (bool, error) { return s.State == StateUp, nil })
	return Outcome{Balancer: b.Name, State: s, Err: err}
}

// nodeLabel names the node in messages, with the balancer when it has a name: "ss2 [nlb]".
func nodeLabel(n Node, balancer string) string {
	if balancer == "" {
		return n.Name
	}
	return n.Name + " [" + balancer + "]"
}

func wait(ctx context.Context, b Named, n Node, op string, w Wait, done func(ServerState) (bool, error)) (ServerState, error) {
	label := nodeLabel(n, b.Name)
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
	var last ServerState
	seen := false
	for {
		s, err := b.State(ctx, n)
		if err != nil && ctx.Err() != nil {
			// Ctrl-C during a look at the balancer: the same interruption as between looks.
			return last, &InterruptedError{Op: op, Node: label, Name: n.Name, Last: last, Unseen: !seen, Err: ctx.Err()}
		}
		if err != nil {
			return s, fmt.Errorf("%s %s: %w", op, label, err)
		}
		last, seen = s, true
		if w.Progress != nil {
			w.Progress(Progress{Op: op, Node: n.Name, Balancer: b.Name, State: s, Elapsed: clock.Since(start)})
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
			return s, &InterruptedError{Op: op, Node: label, Name: n.Name, Last: s, Err: ctx.Err()}
		case <-deadline:
			return s, &TimeoutError{Op: op, Node: label, Waited: clock.Since(start), Last: s}
		case <-clock.After(poll):
		}
	}
}
