package lbadapters

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// recorder is a stand-in balancer for unit tests of the orchestration: it records the calls
// and answers State from a script of states (the last one repeats).
type recorder struct {
	mu     sync.Mutex
	calls  []string
	states []ServerState
	err    error // returned by Drain/Enable
	polls  int
	// onState, when set, runs on every State call with its number (0, 1, ...); an error it
	// returns is State's error.
	onState func(poll int) error
}

func (r *recorder) State(_ context.Context, n Node) (ServerState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "state "+n.Server)
	if r.onState != nil {
		if err := r.onState(r.polls); err != nil {
			r.polls++
			return ServerState{}, err
		}
	}
	i := r.polls
	if i >= len(r.states) {
		i = len(r.states) - 1
	}
	r.polls++
	return r.states[i], nil
}

func (r *recorder) Drain(_ context.Context, n Node) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "drain "+n.Server)
	return r.err
}

func (r *recorder) Enable(_ context.Context, n Node) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "enable "+n.Server)
	return r.err
}

var node2 = Node{Name: "node2", Address: "127.0.0.3", Role: RoleSecondary, Server: "srv2"}

func drained(n int) ServerState { return ServerState{State: StateDrain, Status: "DRAIN", Sessions: n} }

// runAdvancing runs f and, each time f's goroutine waits on the fake clock (on `waiters`
// timers: the poll, plus the deadline when there is one), advances the clock by poll.
func runAdvancing(t *testing.T, clock *clockwork.FakeClock, waiters int, poll time.Duration, f func() (ServerState, error)) (ServerState, error) {
	t.Helper()
	type res struct {
		s   ServerState
		err error
	}
	done := make(chan res, 1)
	go func() { s, err := f(); done <- res{s, err} }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		bctx, bcancel := context.WithCancel(ctx)
		blocked := make(chan error, 1)
		go func() { blocked <- clock.BlockUntilContext(bctx, waiters) }()
		select {
		case r := <-done:
			bcancel()
			return r.s, r.err
		case err := <-blocked:
			bcancel()
			if err != nil {
				t.Fatal("the wait neither returned nor blocked on the clock")
			}
		}
		clock.Advance(poll)
	}
}

func TestDrainWaitsForSessions(t *testing.T) {
	tests := []struct {
		name      string
		states    []ServerState
		wantPolls int
	}{
		{"already empty", []ServerState{drained(0)}, 1},
		{"counts down", []ServerState{drained(3), drained(2), drained(2), drained(0)}, 4},
		{"maint counts as drained", []ServerState{drained(1), {State: StateMaint, Status: "MAINT"}}, 2},
		{"not counted: draining until out of service", []ServerState{
			{State: StateDrain, Status: "draining", Sessions: NotCounted},
			{State: StateDrain, Status: "draining", Sessions: NotCounted},
			{State: StateMaint, Status: "unused", Sessions: NotCounted}}, 3},
		{"UP with no sessions is not drained", []ServerState{{State: StateUp, Status: "UP"}, drained(0)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &recorder{states: tt.states}
			clock := clockwork.NewFakeClock()
			var progress []int
			w := Wait{Poll: time.Second, Clock: clock, Progress: func(p Progress) {
				if p.Op != "drain" || p.Node != "node2" {
					t.Errorf("progress for %s %s; want drain node2", p.Op, p.Node)
				}
				progress = append(progress, p.State.Sessions)
			}}
			got, err := runAdvancing(t, clock, 1, time.Second, func() (ServerState, error) {
				return Drain(context.Background(), b, node2, w)
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.states[len(tt.states)-1]; got != want {
				t.Errorf("got %+v; want %+v", got, want)
			}
			if b.polls != tt.wantPolls || len(progress) != tt.wantPolls {
				t.Errorf("polls %d, progress %v; want %d polls", b.polls, progress, tt.wantPolls)
			}
			if b.calls[0] != "drain srv2" {
				t.Errorf("first call %q; want %q", b.calls[0], "drain srv2")
			}
		})
	}
}

func TestDrainLifted(t *testing.T) {
	b := &recorder{states: []ServerState{drained(1), {State: StateUp, Status: "UP", Sessions: 1}}}
	clock := clockwork.NewFakeClock()
	_, err := runAdvancing(t, clock, 1, time.Second, func() (ServerState, error) {
		return Drain(context.Background(), b, node2, Wait{Poll: time.Second, Clock: clock})
	})
	if !errors.Is(err, ErrLifted) {
		t.Fatalf("got %v; want ErrLifted", err)
	}
	if want := "drain node2: drain lifted while waiting (balancer shows UP again)"; err.Error() != want {
		t.Errorf("got %q; want %q", err, want)
	}
}

func TestDrainTimeout(t *testing.T) {
	b := &recorder{states: []ServerState{drained(2)}}
	clock := clockwork.NewFakeClock()
	_, err := runAdvancing(t, clock, 2, time.Second, func() (ServerState, error) {
		return Drain(context.Background(), b, node2, Wait{Poll: time.Second, Timeout: 5 * time.Second, Clock: clock})
	})
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v; want a *TimeoutError matching ErrTimeout", err)
	}
	if te.Last.Sessions != 2 || te.Waited != 5*time.Second {
		t.Errorf("got %d sessions after %s; want 2 after 5s", te.Last.Sessions, te.Waited)
	}
	if want := "drain node2: timed out after 5s with 2 sessions left (balancer state DRAIN)"; err.Error() != want {
		t.Errorf("got %q; want %q", err, want)
	}
}

func TestDrainNoWait(t *testing.T) {
	b := &recorder{states: []ServerState{drained(7)}}
	got, err := Drain(context.Background(), b, node2, Wait{NoWait: true, Timeout: time.Hour})
	if err != nil || got.Sessions != 7 {
		t.Fatalf("got %+v, %v; want 7 sessions, nil", got, err)
	}
	if want := []string{"drain srv2", "state srv2"}; !reflect.DeepEqual(b.calls, want) {
		t.Errorf("calls %q; want %q", b.calls, want)
	}
}

func TestDrainBalancerError(t *testing.T) {
	b := &recorder{err: ErrNotFound, states: []ServerState{drained(0)}}
	_, err := Drain(context.Background(), b, node2, Wait{})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v; want ErrNotFound", err)
	}
	if len(b.calls) != 1 {
		t.Errorf("calls %q; want only the drain", b.calls)
	}
}

func TestDrainCancelled(t *testing.T) {
	b := &recorder{states: []ServerState{drained(1)}}
	ctx, cancel := context.WithCancel(context.Background())
	w := Wait{Clock: clockwork.NewFakeClock(), Progress: func(Progress) { cancel() }}
	_, err := Drain(ctx, b, node2, w)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
}

// TestDrainCancelledDuringALook: Ctrl-C while the balancer is being asked (HAProxy's
// "show stat" read ends with the ctx) is the same interruption as Ctrl-C between looks: it
// says the state last seen, not the read's "context canceled" (a CI run caught this race).
func TestDrainCancelledDuringALook(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &recorder{states: []ServerState{drained(1)}, onState: func(poll int) error {
		if poll == 0 {
			return nil
		}
		cancel()
		return fmt.Errorf("haproxy: read answer to \"show stat\": %w", ctx.Err())
	}}
	clock := clockwork.NewFakeClock()
	_, err := runAdvancing(t, clock, 1, time.Second, func() (ServerState, error) {
		return Drain(ctx, b, node2, Wait{Poll: time.Second, Clock: clock})
	})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want an *InterruptedError matching context.Canceled", err)
	}
	if want := "drain node2: interrupted; node2 stays DRAIN, 1 session left"; err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
}

// TestDrainCancelledBeforeAnyLook: Ctrl-C before the balancer answered even once says so,
// and points at status instead of guessing the state.
func TestDrainCancelledBeforeAnyLook(t *testing.T) {
	for _, op := range []string{"drain", "enable"} {
		t.Run(op, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b := &recorder{states: []ServerState{drained(1)}, onState: func(int) error {
				cancel()
				return fmt.Errorf("haproxy: read answer: %w", ctx.Err())
			}}
			var err error
			if op == "drain" {
				_, err = Drain(ctx, b, node2, Wait{Clock: clockwork.NewFakeClock()})
			} else {
				_, err = Enable(ctx, b, node2, Wait{Clock: clockwork.NewFakeClock()})
			}
			var ie *InterruptedError
			if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v; want an *InterruptedError matching context.Canceled", err)
			}
			want := op + " node2: interrupted before the balancer answered; \"lbadapter status\" shows node2's state"
			if err.Error() != want {
				t.Errorf("error %q; want %q", err, want)
			}
		})
	}
}

// TestDrainCancelledDuringTheChange: Ctrl-C while the balancer is being told to drain is an
// interruption too.
func TestDrainCancelledDuringTheChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &recorder{err: fmt.Errorf("haproxy: write: %w", context.Canceled), states: []ServerState{drained(1)}}
	_, err := Drain(ctx, b, node2, Wait{Clock: clockwork.NewFakeClock()})
	var ie *InterruptedError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v; want an *InterruptedError", err)
	}
	if want := "drain node2: interrupted before the balancer answered; \"lbadapter status\" shows node2's state"; err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
}

func TestEnableWaitsForUp(t *testing.T) {
	b := &recorder{states: []ServerState{
		{State: StateDown, Status: "DOWN 1/2"}, {State: StateDown, Status: "DOWN 1/2"}, {State: StateUp, Status: "UP"},
	}}
	clock := clockwork.NewFakeClock()
	got, err := runAdvancing(t, clock, 2, time.Second, func() (ServerState, error) {
		return Enable(context.Background(), b, node2, Wait{Poll: time.Second, Timeout: time.Minute, Clock: clock})
	})
	if err != nil || got.State != StateUp {
		t.Fatalf("got %+v, %v; want UP, nil", got, err)
	}
	if b.calls[0] != "enable srv2" || b.polls != 3 {
		t.Errorf("calls %q; want enable then 3 polls", b.calls)
	}
}

func TestEnableTimeoutMessage(t *testing.T) {
	b := &recorder{states: []ServerState{{State: StateDrain, Status: "DRAIN (agent)"}}}
	clock := clockwork.NewFakeClock()
	_, err := runAdvancing(t, clock, 2, time.Second, func() (ServerState, error) {
		return Enable(context.Background(), b, node2, Wait{Poll: time.Second, Timeout: 3 * time.Second, Clock: clock})
	})
	if want := "enable node2: timed out after 3s waiting for UP (balancer state DRAIN (agent))"; err == nil || err.Error() != want {
		t.Errorf("got %v; want %q", err, want)
	}
}

func TestProgressString(t *testing.T) {
	tests := []struct {
		p    Progress
		want string
	}{
		{Progress{Op: "drain", Node: "ss2", State: drained(3), Elapsed: 12480 * time.Millisecond},
			"drain ss2: DRAIN, 3 sessions left, 12.5s elapsed"},
		{Progress{Op: "drain", Node: "ss2", Balancer: "nlb", Elapsed: 45200 * time.Millisecond,
			State: ServerState{State: StateDrain, Status: "draining", Sessions: NotCounted, DrainLimit: 300 * time.Second}},
			"drain ss2 [nlb]: draining, 45s of up to 300s"},
		{Progress{Op: "drain", Node: "ss2", Balancer: "nlb", Elapsed: 300100 * time.Millisecond,
			State: ServerState{State: StateMaint, Status: "unused", Sessions: NotCounted, Reason: "Target.NotRegistered"}},
			"drain ss2 [nlb]: unused, 5m0.1s elapsed"},
		{Progress{Op: "enable", Node: "ss2", Balancer: "nlb", Elapsed: 4 * time.Second,
			State: ServerState{State: StateDown, Status: "unhealthy", Sessions: NotCounted, Reason: "Target.ResponseCodeMismatch",
				Description: "Health checks failed with these codes: [503]"}},
			"enable ss2 [nlb]: unhealthy (Target.ResponseCodeMismatch: Health checks failed with these codes: [503]), 4s elapsed"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("got %q; want %q", got, tt.want)
		}
	}
}

// TestDrainAll: every balancer is drained and waited for; a failing one does not stop the
// others, and its error names it.
func TestDrainAll(t *testing.T) {
	ok := &recorder{states: []ServerState{drained(0)}}
	bad := &recorder{states: []ServerState{drained(0)}, err: ErrNotFound}
	clock := clockwork.NewFakeClock()
	var mu sync.Mutex
	seen := map[string]int{}
	w := Wait{Poll: time.Second, Clock: clock, Progress: func(p Progress) {
		mu.Lock()
		seen[p.Balancer]++
		mu.Unlock()
	}}
	out := DrainAll(context.Background(), []Named{{Name: "haproxy", Balancer: ok}, {Name: "nlb", Balancer: bad}}, node2, w)
	if len(out) != 2 || out[0].Balancer != "haproxy" || out[0].Err != nil || out[1].Balancer != "nlb" {
		t.Fatalf("outcomes %+v", out)
	}
	if !errors.Is(out[1].Err, ErrNotFound) || out[1].Err.Error() != "drain node2 [nlb]: not known to the balancer" {
		t.Errorf("nlb error %q; want it to name the balancer and wrap ErrNotFound", out[1].Err)
	}
	if seen["haproxy"] != 1 || seen["nlb"] != 0 {
		t.Errorf("progress per balancer %v; want haproxy once", seen)
	}
	if !reflect.DeepEqual(ok.calls, []string{"drain srv2", "state srv2"}) {
		t.Errorf("haproxy calls %v", ok.calls)
	}
}
