package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/internal/units"
	"github.com/xroad-lb/lbkit/lbadapters"
)

// ErrPreflight is wrapped when the cluster is not ready for an upgrade.
var ErrPreflight = errors.New("preflight failed: the cluster is not ready for an upgrade")

// DefaultPreflightWait is how long the preflight looks again while a condition is not met
// (a replication lag of a moment, a sync pass on its way).
const DefaultPreflightWait = 10 * time.Second

// Preflight checks the cluster before a run: every agent reachable and healthy and reporting
// its version, every balancer reachable and showing every node UP, on every secondary the
// replication streaming and caught up and the config sync current, and SSH to every node of
// the plan with its host key known and lbagent there. It returns the X-Road version of
// every node, or an error wrapping ErrPreflight that lists what to fix.
func (u *Upgrader) Preflight(ctx context.Context, steps []Step, wait time.Duration) (map[string]string, error) {
	var planned []string
	for _, s := range steps {
		if !slices.Contains(planned, s.Node) {
			planned = append(planned, s.Node)
		}
	}
	c := u.clock()
	deadline := c.Now().Add(wait)
	var problems []string
	var versions map[string]string
	for {
		versions, problems = u.clusterProblems(ctx)
		if len(problems) == 0 || c.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-c.After(u.poll()):
		}
	}
	problems = append(problems, u.sshProblems(ctx, planned)...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w:\n  - %s", ErrPreflight, strings.Join(problems, "\n  - "))
	}
	fmt.Fprintf(u.Out, "preflight: %d agents healthy, %d balancer(s) show every node UP, replication and sync current on the secondaries, SSH and lbagent on %s\n",
		len(u.Config.Nodes), len(u.Balancers), strings.Join(planned, ", "))
	return versions, nil
}

func (u *Upgrader) clusterProblems(ctx context.Context) (map[string]string, []string) {
	rows := lbadapters.Status(ctx, u.Config, u.Balancers, u.Agent)
	versions := map[string]string{}
	var p []string
	for _, r := range rows {
		n := r.Node.Name
		for _, b := range r.Balancers {
			switch {
			case b.Err != nil:
				p = append(p, fmt.Sprintf("%s [%s]: %v", n, b.Name, b.Err))
			case b.State.State != lbadapters.StateUp:
				p = append(p, fmt.Sprintf("%s [%s]: the balancer shows it %s, want UP (lbadapter enable %s)", n, b.Name, b.State.Words(), n))
			}
		}
		if r.AgentErr != nil {
			p = append(p, fmt.Sprintf("%s: %v", n, r.AgentErr))
			continue
		}
		a := r.Agent
		if a.State != lbadapters.AgentHealthy {
			p = append(p, fmt.Sprintf("%s: its lbagent reports %s: %s", n, a.State, a.Output))
		}
		if a.Components.Version == nil {
			p = append(p, fmt.Sprintf("%s: its lbagent reports no version in /status (upgrade lbagent first)", n))
		} else {
			versions[n] = a.Components.Version.XRoad
		}
		if r.Node.Role != lbadapters.RoleSecondary {
			continue
		}
		switch rep := a.Components.Replication; {
		case rep == nil:
			p = append(p, fmt.Sprintf("%s: its lbagent does not watch the serverconf replication ([replication] in lbagent.ini)", n))
		case !rep.Up || !rep.Streaming:
			p = append(p, fmt.Sprintf("%s: serverconf replication not streaming: %s", n, orText(rep.Error, "no WAL receiver")))
		case rep.Paused:
			p = append(p, fmt.Sprintf("%s: serverconf replay is paused (an unfinished upgrade? lbadapter upgrade --resume, or lbagent db resume on the node)", n))
		case rep.LagBytes > 0:
			p = append(p, fmt.Sprintf("%s: serverconf replication %s behind", n, units.Bytes(rep.LagBytes)))
		}
		switch sy := a.Components.Sync; {
		case sy == nil:
			p = append(p, fmt.Sprintf("%s: its lbagent runs no config sync ([sync] primary in lbagent.ini or node.ini)", n))
		case sy.Paused:
			p = append(p, fmt.Sprintf("%s: config sync is paused (an unfinished upgrade? lbadapter upgrade --resume, or lbagent sync resume on the node)", n))
		case sy.LastError != "" || sy.AgeSeconds == nil:
			p = append(p, fmt.Sprintf("%s: config sync not current: %s", n, orText(sy.LastError, "no successful pass yet")))
		}
	}
	return versions, p
}

func (u *Upgrader) sshProblems(ctx context.Context, nodes []string) []string {
	var p []string
	for _, name := range nodes {
		n, err := u.Config.Node(name)
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		_, _, lbagent := u.Config.SSHAddr(n)
		if err := u.run(ctx, n, lbagent+" --version", io.Discard); err != nil {
			p = append(p, fmt.Sprintf("%s: over SSH: %v", name, err))
			continue
		}
		// The db steps connect to the serverconf standby as a superuser.
		if n.Role == lbadapters.RoleSecondary {
			if err := u.run(ctx, n, u.Config.DBLBAgent(n)+" db status", io.Discard); err != nil {
				p = append(p, fmt.Sprintf("%s: the db steps cannot reach the serverconf instance: %v (see [ssh] db-lbagent)", name, err))
			}
		}
	}
	return p
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
