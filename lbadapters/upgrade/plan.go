// Package upgrade is the X-Road guide's cluster upgrade (chapter 7) as a resumable plan: the
// online rolling upgrade of 7.2 and the offline upgrade of 7.1, step by step on the nodes
// (over SSH, as lbagent subcommands) and on every balancer (drain, enable), with a checkpoint
// after every step.
package upgrade

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters"
)

// Step kinds.
const (
	KindPauseReplay  = "pause-replay"   // lbagent db pause
	KindPauseSync    = "pause-sync"     // lbagent sync pause
	KindDrain        = "drain"          // every balancer, wait for no sessions
	KindUpgrade      = "upgrade"        // the operator's command
	KindWaitHealthy  = "wait-healthy"   // the agent healthy, reporting the new version
	KindEnable       = "enable"         // every balancer, wait for UP
	KindResumeReplay = "resume-replay"  // lbagent db resume
	KindWaitCaughtUp = "wait-caught-up" // lbagent db wait-caught-up
	KindResumeSync   = "resume-sync"    // lbagent sync resume
	KindSyncOnce     = "sync-once"      // lbagent sync --once
)

// Step statuses.
const (
	Pending = "pending"
	Done    = "done"
	Failed  = "failed"
)

// Step is one step of the plan on one node.
type Step struct {
	Node   string        `json:"node"`
	Kind   string        `json:"kind"`
	Remote string        `json:"remote,omitempty"` // the command run on the node over SSH
	Status string        `json:"status"`
	Start  time.Time     `json:"start,omitzero"`
	Took   time.Duration `json:"took,omitempty"`
	Error  string        `json:"error,omitempty"`
	Note   string        `json:"note,omitempty"`
}

// Describe is the step in words, for the plan and the progress lines.
func (s Step) Describe() string {
	switch s.Kind {
	case KindDrain:
		return "drain on every balancer, wait until no session is left"
	case KindWaitHealthy:
		return "wait until its lbagent reports it healthy with the new version"
	case KindEnable:
		return "enable on every balancer, wait until UP"
	}
	return "run: " + s.Remote
}

// Options choose what the plan does.
type Options struct {
	Command string   // the upgrade command run on each node
	Nodes   []string // the nodes to upgrade (default every node), any order
	Offline bool     // 7.1 instead of 7.2
}

// Plan lays out every step, in the guide's order.
func Plan(c *lbadapters.Config, o Options) ([]Step, error) {
	if strings.TrimSpace(o.Command) == "" {
		return nil, errors.New("--command is required (e.g. 'apt-get -y install --only-upgrade xroad-securityserver')")
	}
	var nodes []lbadapters.Node
	if len(o.Nodes) == 0 {
		nodes = slices.Clone(c.Nodes)
	} else {
		for _, name := range o.Nodes {
			n, err := c.Node(name)
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(nodes, func(m lbadapters.Node) bool { return m.Name == n.Name }) {
				return nil, fmt.Errorf("--nodes lists %s twice", n.Name)
			}
			nodes = append(nodes, n)
		}
	}
	// The primary first, then the others in config order.
	var primary []lbadapters.Node
	var others []lbadapters.Node
	for _, n := range c.Nodes {
		if !slices.ContainsFunc(nodes, func(m lbadapters.Node) bool { return m.Name == n.Name }) {
			continue
		}
		if n.Role == lbadapters.RolePrimary {
			primary = append(primary, n)
		} else {
			others = append(others, n)
		}
	}
	if len(primary) > 1 {
		return nil, fmt.Errorf("%s lists %d primaries; an X-Road cluster has one", c.Path, len(primary))
	}
	cmd := func(n lbadapters.Node, args string) string {
		if strings.HasPrefix(args, "db ") {
			return c.DBLBAgent(n) + " " + args
		}
		_, _, lbagent := c.SSHAddr(n)
		return lbagent + " " + args
	}
	var steps []Step
	add := func(n lbadapters.Node, kind, remote string) {
		steps = append(steps, Step{Node: n.Name, Kind: kind, Remote: remote, Status: Pending})
	}
	secondary := func(n lbadapters.Node) bool { return n.Role == lbadapters.RoleSecondary }
	if o.Offline {
		// 7.1: stop taking traffic on all, upgrade the primary, let the changes propagate,
		// upgrade the secondaries, start.
		for _, n := range append(slices.Clone(primary), others...) {
			add(n, KindDrain, "")
		}
		for _, n := range primary {
			add(n, KindUpgrade, o.Command)
			add(n, KindWaitHealthy, "")
		}
		for _, n := range others {
			if secondary(n) {
				add(n, KindWaitCaughtUp, cmd(n, "db wait-caught-up"))
				add(n, KindSyncOnce, cmd(n, "sync --once"))
			}
			add(n, KindUpgrade, o.Command)
			add(n, KindWaitHealthy, "")
		}
		for _, n := range append(slices.Clone(primary), others...) {
			add(n, KindEnable, "")
		}
		return steps, nil
	}
	// 7.2.1: pause replay and sync on every secondary, so that nothing of the upgraded
	// primary reaches a secondary before it is upgraded itself.
	if len(primary) > 0 {
		for _, n := range others {
			if secondary(n) {
				add(n, KindPauseReplay, cmd(n, "db pause"))
				add(n, KindPauseSync, cmd(n, "sync pause"))
			}
		}
	}
	// 7.2.2: the primary.
	for _, n := range primary {
		add(n, KindDrain, "")
		add(n, KindUpgrade, o.Command)
		add(n, KindWaitHealthy, "")
		add(n, KindEnable, "")
	}
	// 7.2.3: each secondary, one by one.
	for _, n := range others {
		add(n, KindDrain, "")
		if secondary(n) {
			add(n, KindResumeReplay, cmd(n, "db resume"))
			add(n, KindWaitCaughtUp, cmd(n, "db wait-caught-up"))
		}
		add(n, KindUpgrade, o.Command)
		if secondary(n) {
			add(n, KindResumeSync, cmd(n, "sync resume"))
			add(n, KindSyncOnce, cmd(n, "sync --once"))
		}
		add(n, KindWaitHealthy, "")
		add(n, KindEnable, "")
	}
	return steps, nil
}
