package lbadapters

import (
	"context"
	"errors"
	"time"
)

// Balancer is what the orchestration needs from a load balancer (HAProxy's runtime API, an
// AWS ELBv2 target group). Calls must honour ctx's deadline.
type Balancer interface {
	// State reports how the balancer sees the node right now.
	State(ctx context.Context, n Node) (ServerState, error)
	// Drain stops new traffic to the node and lets existing connections finish.
	Drain(ctx context.Context, n Node) error
	// Enable gives the node new traffic again (it still has to pass the health checks).
	Enable(ctx context.Context, n Node) error
}

// Errors an adapter wraps so that callers (and lbadapter's exit codes) can branch on them.
var (
	ErrUnreachable = errors.New("balancer unreachable")      // cannot connect to its API
	ErrNotFound    = errors.New("not known to the balancer") // no such backend, server or target
	ErrDenied      = errors.New("balancer refused")          // permission denied
)

// Describer is implemented by adapters that can show their balancer's own settings (an ELBv2
// target group's health check and deregistration delay) in `status -o json`.
type Describer interface {
	Describe(ctx context.Context) (any, error)
}

// BatchStater is implemented by adapters that read many nodes' states in one call (an ELBv2
// DescribeTargetHealth naming every target); Status then asks once instead of once per node.
type BatchStater interface {
	// States returns one state per node, in order, or the error of the one call.
	States(ctx context.Context, nodes []Node) ([]ServerState, error)
}

// Named is one balancer of the cluster config with its adapter.
type Named struct {
	Name string
	Type string
	Balancer
}

// State is a balancer's view of a node, normalised across balancers.
type State string

const (
	StateUp      State = "UP"      // takes new traffic
	StateDown    State = "DOWN"    // failed its checks
	StateDrain   State = "DRAIN"   // no new traffic, existing connections continue
	StateMaint   State = "MAINT"   // out of service (ELBv2: unused, not registered)
	StateNoLB    State = "NOLB"    // soft-stopped (e.g. HAProxy disable-on-404)
	StateUnknown State = "UNKNOWN" // anything else
)

// NotCounted is ServerState.Sessions of a balancer that does not count connections (ELBv2).
const NotCounted = -1

// ServerState is a balancer's view of one node.
type ServerState struct {
	State  State  `json:"state"`
	Status string `json:"status"` // the balancer's own words, e.g. "DRAIN (agent)", "UP 1/2", "draining"
	// Sessions is the count of connections through the balancer to the node, or NotCounted.
	Sessions int `json:"sessions"`
	// Reason and Description are the balancer's explanation (ELBv2's TargetHealth).
	Reason      string `json:"reason,omitempty"`
	Description string `json:"description,omitempty"`
	// DrainLimit is the longest a drain can take on this balancer (ELBv2's deregistration
	// delay); 0 = until the connections end.
	DrainLimit time.Duration `json:"-"`
}

// Words is the status with the reason, e.g. "unhealthy (Target.ResponseCodeMismatch)".
func (s ServerState) Words() string {
	if s.Reason == "" {
		return s.Status
	}
	return s.Status + " (" + s.Reason + ")"
}
