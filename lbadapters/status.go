package lbadapters

import (
	"context"
	"sync"
)

// NodeStatus is one row of the cluster status: the node, what its agent says and what the
// balancer shows. A part that could not be read has its error set instead.
type NodeStatus struct {
	Node          Node         `json:"node"`
	Agent         *AgentStatus `json:"agent,omitempty"`
	AgentError    string       `json:"agent_error,omitempty"`
	Balancer      *ServerState `json:"balancer,omitempty"`
	BalancerError string       `json:"balancer_error,omitempty"`

	AgentErr    error `json:"-"`
	BalancerErr error `json:"-"`
}

// Status reads every node's agent and balancer state, all at once, and returns one row per
// node in config order. It never fails as a whole: errors are per row.
func Status(ctx context.Context, c *Config, b Balancer, a AgentReader) []NodeStatus {
	rows := make([]NodeStatus, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		rows[i].Node = n
		wg.Add(2)
		go func() {
			defer wg.Done()
			if s, err := a.Status(ctx, n); err != nil {
				rows[i].AgentErr, rows[i].AgentError = err, err.Error()
			} else {
				rows[i].Agent = &s
			}
		}()
		go func() {
			defer wg.Done()
			if s, err := b.State(ctx, n); err != nil {
				rows[i].BalancerErr, rows[i].BalancerError = err, err.Error()
			} else {
				rows[i].Balancer = &s
			}
		}()
	}
	wg.Wait()
	return rows
}
