package watch

import (
	"fmt"

	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/lbadapters"
)

// nodeState is the agent-check state of one node, as HAProxy keeps it.
type nodeState struct {
	healthy    bool
	admin      bool // the agent said drain or maint, until it says ready
	pct        int  // the agent's weight, 100 when it never said
	fails, oks int
	reason     string // the last answer or failure
}

func (s nodeState) down() bool { return !s.healthy || s.admin || s.pct == 0 }

// next is the node's state after one poll.
func (w *Watcher) next(s nodeState, answer []byte, err error) nodeState {
	var r haproxy.AgentReply
	if err == nil {
		r, err = haproxy.ParseAgentLine(answer)
		if err != nil {
			err = fmt.Errorf("bad answer %q: %w", truncate(answer), err)
		}
	}
	fail := func(reason string) {
		s.oks, s.fails, s.reason = 0, s.fails+1, reason
		if s.healthy && s.fails >= w.o.Fall {
			s.healthy = false
		}
	}
	if err != nil {
		fail(err.Error())
		return s
	}
	line := r.String()
	switch r.Health {
	case "down", "stopped", "fail":
		fail(line)
	case "up":
		s.fails, s.oks = 0, s.oks+1
		if !s.healthy && s.oks >= w.o.Rise {
			s.healthy = true
		}
	}
	switch {
	case r.Admin == "drain" || r.Admin == "maint":
		s.admin = true
	case r.Admin == "ready":
		s.admin = false
	case r.Health == "up" && s.oks >= w.o.Rise:
		// lbagent says "ready" once per balancer address; another poller on the same host
		// (the Lua module, a second watcher) may have heard it. An agent that says "up"
		// without drain rise times in a row has left its maintenance: the watcher only ever
		// lifts its own down, never an operator's.
		s.admin = false
	}
	if r.WeightSet {
		s.pct = min(r.Weight, 100)
	}
	if r.Health != "down" && r.Health != "stopped" && r.Health != "fail" {
		s.reason = line
	}
	return s
}

func truncate(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

func (w *Watcher) logChange(n lbadapters.Node, a, b nodeState) {
	if w.o.Log == nil {
		return
	}
	switch {
	case a.down() != b.down() && b.down():
		w.o.Log(Event{Node: n.Name, Change: "down", Reason: b.reason})
	case a.down() != b.down():
		w.o.Log(Event{Node: n.Name, Change: "up", Reason: b.reason})
	case a.pct != b.pct && !b.down():
		w.o.Log(Event{Node: n.Name, Change: fmt.Sprintf("weight %d%%", b.pct), Reason: b.reason})
	}
}
