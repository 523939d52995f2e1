package lbadapters

import (
	"context"
	"testing"
)

// batch is a balancer that answers every node's state in one call.
type batch struct {
	recorder
	batches int
}

func (b *batch) States(_ context.Context, nodes []Node) ([]ServerState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches++
	out := make([]ServerState, len(nodes))
	for i := range nodes {
		out[i] = ServerState{State: StateUp, Status: "healthy", Sessions: NotCounted}
	}
	return out, nil
}

type healthyAgent struct{}

func (healthyAgent) Status(context.Context, Node) (AgentStatus, error) {
	return AgentStatus{State: AgentHealthy}, nil
}

// TestStatusBatch: a BatchStater is asked once for all nodes, another balancer once per node.
func TestStatusBatch(t *testing.T) {
	c := &Config{Nodes: []Node{{Name: "a", Server: "a"}, {Name: "b", Server: "b"}, {Name: "c", Server: "c"}}}
	perNode := &recorder{states: []ServerState{drained(0)}}
	b := &batch{}
	rows := Status(context.Background(), c, []Named{{Name: "haproxy", Balancer: perNode}, {Name: "nlb", Balancer: b}}, healthyAgent{})
	if b.batches != 1 || b.polls != 0 || perNode.polls != 3 {
		t.Errorf("batch calls %d, its State calls %d, per-node State calls %d; want 1, 0, 3", b.batches, b.polls, perNode.polls)
	}
	for _, r := range rows {
		if len(r.Balancers) != 2 || r.Balancers[0].Name != "haproxy" || r.Balancers[1].Name != "nlb" ||
			r.Balancers[1].State == nil || r.Balancers[1].State.Status != "healthy" || r.Balancers[0].State == nil {
			t.Errorf("%s: %+v", r.Node.Name, r.Balancers)
		}
	}
}
