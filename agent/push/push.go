// Package push tells HAProxy about a change of the node's verdict at once, through the
// runtime API, so a failing node leaves the pool without waiting for inter × fall.
//
// On a change it sends: unhealthy → "set server b/s health down"; healthy → "health up";
// maintenance → "state drain" (or maint). Like the agent-check, it sends "state ready" only
// to lift a drain/maint that it pushed itself, so an operator's drain is never undone. That it
// pushed one is recorded in Config.State (the agent's one state file, agentcheck.State)
// before the command is sent, so a drain pushed before a restart is lifted after it.
// Verdicts are not pushed while a critical check has not run yet (a restarting agent does not
// blip the node out of the pool). A failed push is retried with backoff until it succeeds or
// the verdict changes again.
package push

import (
	"context"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/verdict"
	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/internal/backoff"
)

// Event reports one push (for the daemon's log and metrics).
type Event struct {
	State    verdict.State
	Commands []string // what was sent, e.g. "health down"
	Err      error    // nil on success
	// StateErr is a failure to record the push in the state file: the push itself went on
	// (Err), but a drain it set may not be lifted after a restart.
	StateErr error
}

// State keeps the admin state push set (drain or maint, "" for none) over restarts:
// agentcheck.State, the agent's one state file.
type State interface {
	Pushed() string
	SetPushed(word string) error
}

// memState is the State of a pusher without a state file.
type memState struct{ word string }

func (m *memState) Pushed() string              { return m.word }
func (m *memState) SetPushed(word string) error { m.word = word; return nil }

// Pusher follows a verdict store and pushes its changes to one HAProxy server.
type Pusher struct {
	cfg     Config
	client  *haproxy.Client
	store   *verdict.Store
	onEvent func(Event)
	state   State
	clock   clockwork.Clock
}

// New returns a pusher for cfg (see LoadConfig). onEvent, when not nil, is called after each
// push attempt; it must not block.
func New(cfg Config, store *verdict.Store, onEvent func(Event)) *Pusher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaintenanceWord == "" {
		cfg.MaintenanceWord = string(haproxy.StateDrain)
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	p := &Pusher{cfg: cfg, client: haproxy.NewClient(cfg.Socket), store: store, onEvent: onEvent, state: cfg.State}
	if p.state == nil {
		p.state = &memState{}
	}
	p.clock = cfg.Clock
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	return p
}

// Backoff between retries of a failed push.
var retryPolicy = backoff.Policy{Min: 250 * time.Millisecond, Max: 10 * time.Second}

// Run pushes verdict changes until ctx ends.
func (p *Pusher) Run(ctx context.Context) error {
	var pushed verdict.State  // last state HAProxy was told; "" = nothing yet
	var retry clockwork.Timer // nil: no retry pending
	stopRetry := func() {
		if retry != nil {
			retry.Stop()
			retry = nil
		}
	}
	defer stopRetry()
	retries := backoff.Backoff{Policy: retryPolicy}
	v, changed := p.store.Watch()
	for {
		if !pending(v) && v.State != pushed {
			if err := p.apply(ctx, v); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				stopRetry()
				retry = p.clock.NewTimer(retries.Fail())
			} else {
				pushed = v.State
				stopRetry()
				retries.Reset()
			}
		}
		var retryC <-chan time.Time // nil: blocks
		if retry != nil {
			retryC = retry.Chan()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			v, changed = p.store.Watch()
		case <-retryC:
			retry = nil
		}
	}
}

// apply sends the commands for v.
func (p *Pusher) apply(ctx context.Context, v *verdict.Verdict) error {
	ev := Event{State: v.State}
	err := p.send(ctx, v, &ev)
	ev.Err = err
	p.onEvent(ev)
	return err
}

func (p *Pusher) send(ctx context.Context, v *verdict.Verdict, ev *Event) error {
	b, s := p.cfg.Backend, p.cfg.Server
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if v.State == verdict.Maintenance {
		ev.Commands = append(ev.Commands, "state "+p.cfg.MaintenanceWord)
		// Recorded first: a crash right after the command must not leave a drain nobody lifts.
		ev.StateErr = p.state.SetPushed(p.cfg.MaintenanceWord)
		if err := p.client.SetServerState(ctx, b, s, haproxy.AdminState(p.cfg.MaintenanceWord)); err != nil {
			return fmt.Errorf("push %s/%s: %w", b, s, err)
		}
		return nil
	}
	up := v.State == verdict.Healthy
	ev.Commands = append(ev.Commands, "health "+map[bool]string{true: "up", false: "down"}[up])
	if err := p.client.SetHealth(ctx, b, s, up); err != nil {
		return fmt.Errorf("push %s/%s: %w", b, s, err)
	}
	if p.state.Pushed() != "" { // ours, also from before a restart
		ev.Commands = append(ev.Commands, "state ready")
		if err := p.client.SetServerState(ctx, b, s, haproxy.StateReady); err != nil {
			return fmt.Errorf("push %s/%s: %w", b, s, err)
		}
		ev.StateErr = p.state.SetPushed("")
	}
	return nil
}

// pending reports whether a critical check has not produced a result yet.
func pending(v *verdict.Verdict) bool {
	for _, c := range v.Checks {
		if c.Severity == check.Critical && c.Status == check.StatusPending {
			return true
		}
	}
	return false
}
