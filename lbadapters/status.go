package lbadapters

import (
	"context"
	"sync"
)

// NodeStatus is one row of the cluster status: the node, what its agent says and what each
// balancer shows. A part that could not be read has its error set instead.
type NodeStatus struct {
	Node       Node           `json:"node"`
	Agent      *AgentStatus   `json:"agent,omitempty"`
	AgentError string         `json:"agent_error,omitempty"`
	Balancers  []BalancerView `json:"balancers"` // one per balancer, in config order

	AgentErr error `json:"-"`
}

// BalancerView is one balancer's view of a node, or why it could not be read.
type BalancerView struct {
	Name  string       `json:"name"`
	State *ServerState `json:"state,omitempty"`
	Error string       `json:"error,omitempty"`

	Err error `json:"-"`
}

// BalancerInfo is a balancer of the cluster with its own settings, where its adapter can
// read them (Describer).
type BalancerInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Settings any    `json:"settings,omitempty"`
	Error    string `json:"error,omitempty"`

	Err error `json:"-"`
}

// Report is the whole `lbadapter status -o json` document.
type Report struct {
	Balancers []BalancerInfo `json:"balancers"`
	Nodes     []NodeStatus   `json:"nodes"`
}

// Status reads every node's agent and every balancer's state of it, all at once (one call
// for all nodes from a BatchStater), and returns one row per node in config order. It never fails as a whole: errors are per part.
func Status(ctx context.Context, c *Config, bs []Named, a AgentReader) []NodeStatus {
	rows := make([]NodeStatus, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		rows[i].Node = n
		rows[i].Balancers = make([]BalancerView, len(bs))
		wg.Go(func() {
			if s, err := a.Status(ctx, n); err != nil {
				rows[i].AgentErr, rows[i].AgentError = err, err.Error()
			} else {
				rows[i].Agent = &s
			}
		})
		for j, b := range bs {
			if _, batch := b.Balancer.(BatchStater); batch {
				continue
			}
			wg.Go(func() {
				v := BalancerView{Name: b.Name}
				if s, err := b.State(ctx, n); err != nil {
					v.Err, v.Error = err, err.Error()
				} else {
					v.State = &s
				}
				rows[i].Balancers[j] = v
			})
		}
	}
	for j, b := range bs {
		if bs, ok := b.Balancer.(BatchStater); ok {
			wg.Go(func() {
				states, err := bs.States(ctx, c.Nodes)
				for i := range rows {
					v := BalancerView{Name: b.Name}
					if err != nil {
						v.Err, v.Error = err, err.Error()
					} else {
						v.State = &states[i]
					}
					rows[i].Balancers[j] = v
				}
			})
		}
	}
	wg.Wait()
	return rows
}

// Describe reads the settings of every balancer whose adapter is a Describer, all at once.
func Describe(ctx context.Context, bs []Named) []BalancerInfo {
	out := make([]BalancerInfo, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		out[i] = BalancerInfo{Name: b.Name, Type: b.Type}
		d, ok := b.Balancer.(Describer)
		if !ok {
			continue
		}
		wg.Go(func() {
			if s, err := d.Describe(ctx); err != nil {
				out[i].Err, out[i].Error = err, err.Error()
			} else {
				out[i].Settings = s
			}
		})
	}
	wg.Wait()
	return out
}
