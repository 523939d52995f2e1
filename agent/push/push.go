// Package push tells HAProxy about a change of the node's verdict at once, through the
// runtime API, so a failing node leaves the pool without waiting for inter × fall.
//
// On a change it sends: unhealthy → "set server b/s health down"; healthy → "health up";
// maintenance → "state drain" (or maint). Like the agent-check, it sends "state ready" only
// to lift a drain/maint that it pushed itself, so an operator's drain is never undone.
// Verdicts are not pushed while a critical check has not run yet (a restarting agent does not
// blip the node out of the pool). A failed push is retried with backoff until it succeeds or
// the verdict changes again.
package push

import (
	"context"
	"fmt"
	"time"

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
}

// Pusher follows a verdict store and pushes its changes to one HAProxy server.
type Pusher struct {
	cfg     Config
	client  *haproxy.Client
	store   *verdict.Store
	onEvent func(Event)

	pushedAdmin bool // we set drain/maint and have not lifted it yet
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
	return &Pusher{cfg: cfg, client: haproxy.NewClient(cfg.Socket), store: store, onEvent: onEvent}
}

// Backoff between retries of a failed push.
var retryPolicy = backoff.Policy{Min: 250 * time.Millisecond, Max: 10 * time.Second}

// Run pushes verdict changes until ctx ends.
func (p *Pusher) Run(ctx context.Context) error {
	var pushed verdict.State // last state HAProxy was told; "" = nothing yet
	var retry <-chan time.Time
	retries := backoff.Backoff{Policy: retryPolicy}
	v, changed := p.store.Watch()
	for {
		if !pending(v) && v.State != pushed {
			if err := p.apply(ctx, v); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				retry = time.After(retries.Fail())
			} else {
				pushed, retry = v.State, nil
				retries.Reset()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			v, changed = p.store.Watch()
		case <-retry:
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
		if err := p.client.SetServerState(ctx, b, s, haproxy.AdminState(p.cfg.MaintenanceWord)); err != nil {
			return fmt.Errorf("push %s/%s: %w", b, s, err)
		}
		p.pushedAdmin = true
		return nil
	}
	up := v.State == verdict.Healthy
	ev.Commands = append(ev.Commands, "health "+map[bool]string{true: "up", false: "down"}[up])
	if err := p.client.SetHealth(ctx, b, s, up); err != nil {
		return fmt.Errorf("push %s/%s: %w", b, s, err)
	}
	if p.pushedAdmin {
		ev.Commands = append(ev.Commands, "state ready")
		if err := p.client.SetServerState(ctx, b, s, haproxy.StateReady); err != nil {
			return fmt.Errorf("push %s/%s: %w", b, s, err)
		}
		p.pushedAdmin = false
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
