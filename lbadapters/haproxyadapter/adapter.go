// Package haproxyadapter lets lbadapters drive the nodes' servers in an HAProxy backend
// through HAProxy's runtime API.
package haproxyadapter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/lbadapters"
)

// Adapter is a lbadapters.Balancer for one HAProxy backend.
type Adapter struct {
	client  *haproxy.Client
	addr    string
	backend string
	timeout time.Duration
}

// New returns the adapter for a [balancer] section of type haproxy.
func New(cfg lbadapters.BalancerConfig) (*Adapter, error) {
	if cfg.RuntimeAPI == "" || cfg.Backend == "" {
		return nil, errors.New("haproxy balancer needs runtime-api and backend")
	}
	timeout := cfg.CallTimeout
	if timeout <= 0 {
		timeout = lbadapters.DefaultCallTimeout
	}
	return &Adapter{client: haproxy.NewClient(cfg.RuntimeAPI), addr: cfg.RuntimeAPI,
		backend: cfg.Backend, timeout: timeout}, nil
}

// State reads the server's row of "show stat": its status and current sessions (scur).
func (a *Adapter) State(ctx context.Context, n lbadapters.Node) (lbadapters.ServerState, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	row, err := a.client.Server(ctx, a.backend, n.Server)
	if err != nil {
		return lbadapters.ServerState{}, a.explain(n, err)
	}
	return lbadapters.ServerState{State: ParseStatus(row.Status), Status: row.Status, Sessions: row.Sessions}, nil
}

// Drain sets the server's admin state to drain: no new connections, existing ones finish.
// A server in maintenance (MAINT) is left so and Drain returns lbadapters.ErrKeptMaint:
// HAProxy's "state drain" would lift the maintenance, turning its health checks and
// persistent connections back on.
func (a *Adapter) Drain(ctx context.Context, n lbadapters.Node) error {
	s, err := a.State(ctx, n)
	if err != nil {
		return err
	}
	if s.State == lbadapters.StateMaint {
		return lbadapters.ErrKeptMaint
	}
	return a.set(ctx, n, haproxy.StateDrain)
}

// Enable sets the server's admin state to ready (it lifts drain and maint).
func (a *Adapter) Enable(ctx context.Context, n lbadapters.Node) error {
	return a.set(ctx, n, haproxy.StateReady)
}

func (a *Adapter) set(ctx context.Context, n lbadapters.Node, s haproxy.AdminState) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if err := a.client.SetServerState(ctx, a.backend, n.Server, s); err != nil {
		return a.explain(n, err)
	}
	return nil
}

// adapterError is a one-line message for the operator that still matches (errors.Is) both
// the lbadapters sentinel and the haproxy cause.
type adapterError struct {
	kind  error
	msg   string
	cause error
}

func (e *adapterError) Error() string   { return e.msg }
func (e *adapterError) Unwrap() []error { return []error{e.kind, e.cause} }

func (a *Adapter) explain(n lbadapters.Node, err error) error {
	switch {
	case errors.Is(err, haproxy.ErrUnreachable):
		return &adapterError{lbadapters.ErrUnreachable,
			fmt.Sprintf("HAProxy runtime API %s unreachable: %s", a.addr, rootCause(err)), err}
	case errors.Is(err, haproxy.ErrNoSuchBackend):
		return &adapterError{lbadapters.ErrNotFound,
			fmt.Sprintf("HAProxy at %s has no backend %q (see [balancer] backend)", a.addr, a.backend), err}
	case errors.Is(err, haproxy.ErrNoSuchServer):
		return &adapterError{lbadapters.ErrNotFound,
			fmt.Sprintf("HAProxy backend %q has no server %q for node %s (see the node's server key)", a.backend, n.Server, n.Name), err}
	case errors.Is(err, haproxy.ErrPermissionDenied):
		return &adapterError{lbadapters.ErrDenied,
			fmt.Sprintf("HAProxy runtime API %s refused: permission denied (its stats socket needs level admin)", a.addr), err}
	case errors.Is(err, context.DeadlineExceeded):
		return &adapterError{lbadapters.ErrUnreachable,
			fmt.Sprintf("HAProxy runtime API %s did not answer within %s", a.addr, a.timeout), err}
	}
	return fmt.Errorf("HAProxy runtime API %s: %w", a.addr, err)
}

// rootCause is the network error's own text, e.g. "connect: no such file or directory".
func rootCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// ParseStatus normalises the status column of "show stat": "UP", "UP 1/3" (going down, still
// up), "DOWN", "DOWN 1/2" (going up, still down), "DOWN (agent)", "DRAIN", "DRAIN (agent)",
// "MAINT", "MAINT (via b/s)", "MAINT (resolution)", "NOLB", "no check" (no health check: up).
func ParseStatus(s string) lbadapters.State {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "no check") {
		return lbadapters.StateUp
	}
	word, _, _ := strings.Cut(s, " ")
	switch strings.ToUpper(word) {
	case "UP":
		return lbadapters.StateUp
	case "DOWN":
		return lbadapters.StateDown
	case "DRAIN":
		return lbadapters.StateDrain
	case "MAINT":
		return lbadapters.StateMaint
	case "NOLB":
		return lbadapters.StateNoLB
	}
	return lbadapters.StateUnknown
}
