package lbadapters

import (
	"context"
	"sync"
)

// Outcome is how a drain or enable ended on one balancer of the cluster.
type Outcome struct {
	Balancer string
	State    ServerState
	// KeptMaint: the node was in maintenance (HAProxy's MAINT) and drain left it so.
	KeptMaint bool
	Err       error // names the node and the balancer
}

// DrainAll drains the node on every balancer at once and waits for each as Drain does. It
// returns one outcome per balancer, in config order; a failure on one balancer does not stop
// the others.
func DrainAll(ctx context.Context, bs []Named, n Node, w Wait) []Outcome {
	return each(bs, func(b Named) Outcome { return drain(ctx, b, n, w) })
}

// EnableAll enables the node on every balancer at once and waits for each as Enable does.
func EnableAll(ctx context.Context, bs []Named, n Node, w Wait) []Outcome {
	return each(bs, func(b Named) Outcome { return enable(ctx, b, n, w) })
}

func each(bs []Named, f func(Named) Outcome) []Outcome {
	out := make([]Outcome, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Go(func() {
			out[i] = f(b)
		})
	}
	wg.Wait()
	return out
}
