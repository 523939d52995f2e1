package lbadapters

import (
	"context"
	"errors"
)

// Balancer is what the orchestration needs from a load balancer: HAProxy's runtime API now,
// AWS ELBv2 target groups and nginx later. Calls must honour ctx's deadline.
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

// State is a balancer's view of a node, normalised across balancers.
type State string

const (
	StateUp      State = "UP"      // takes new traffic
	StateDown    State = "DOWN"    // failed its checks
	StateDrain   State = "DRAIN"   // no new traffic, existing connections continue
	StateMaint   State = "MAINT"   // out of service
	StateNoLB    State = "NOLB"    // soft-stopped (e.g. HAProxy disable-on-404)
	StateUnknown State = "UNKNOWN" // anything else
)

// ServerState is a balancer's view of one node.
type ServerState struct {
	State    State  `json:"state"`
	Status   string `json:"status"`   // the balancer's own words, e.g. "DRAIN (agent)", "UP 1/2"
	Sessions int    `json:"sessions"` // current connections through the balancer to the node
}
