package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/internal/units"
	"github.com/xroad-lb/lbkit/lbadapters"
)

func (c *cli) statusCmd() *cobra.Command {
	var output string
	var warnOnly bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every node: role, agent verdict, each balancer's state, sessions, replication lag and sync age",
		Long: `status shows one row per node of the cluster config:

  NODE      the node's name in the config file
  ROLE      primary, secondary or standalone (from the config; the agent's view in -o json)
  AGENT     the node's lbagent verdict from http://ADDRESS:HEALTH-PORT/status:
            healthy, unhealthy, maintenance, or unreachable
  one column per balancer, headed by its name (BALANCER for an unnamed [balancer]):
            haproxy: the state of the node's server: UP, DOWN, DRAIN, MAINT, NOLB, with
                     HAProxy's own words, e.g. "DRAIN (agent)", "DOWN 1/2". HAProxy writes
                     "DRAIN (agent)" for any drained server that has an agent-check,
                     whoever drained it (lbadapter drain or the node's lbagent): a note
                     under the table says so; "DOWN (agent)" is the agent's own "down"
            aws:     the target's health in the target group (DescribeTargetHealth): healthy,
                     initial, unhealthy, draining, unused, with AWS's reason code, e.g.
                     "unhealthy (Target.ResponseCodeMismatch)"
            nginx:   the node's line in the servers file: UP, DRAIN (operator), DOWN (agent)
            "?" when the balancer could not be read
  SESSIONS  current connections through the balancers that count them (HAProxy scur,
            nginx workers' established connections to the node);
            "-" when none does (ELBv2 does not report connections per target)
  LAG       a secondary's serverconf replication lag: WAL received but not replayed
            (B, kB, MB, GB; 1024-based), the age of the last replayed transaction while
            behind, "paused" while replay is paused; "?" when the agent cannot read its
            standby, "-" on nodes without a replication watch (the primary)
  SYNC AGE  time since a secondary's last successful config sync pass, "never" before
            the first, "paused" while the pause file exists; "-" without config sync
  REASON    why the agent is not healthy, why a part could not be read, or a balancer's
            description of an unhealthy target

-o json prints {"balancers": [...], "nodes": [...]}: every balancer with its settings where
the adapter reads them (an ELBv2 target group's health check and deregistration delay), and
every node with its agent's /status fields and each balancer's state, reason and description.

After the table, for monitoring, the exit code is non-zero and one line per problem goes to
stderr when a node's agent is not healthy (unhealthy, maintenance, unreachable) or a balancer
does not have the node UP (exit 1; --warn-only: exit 0 for these), and when a balancer
cannot be read (exit 3 or 4 as below, with --warn-only too); the highest code wins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("-o %q: want table or json", output)}
			}
			cfg, bs, err := c.load(cmd.Context())
			if err != nil {
				return err
			}
			rows := lbadapters.Status(cmd.Context(), cfg, bs, lbadapters.HTTPAgent{})
			var infos []lbadapters.BalancerInfo
			if output == "json" {
				infos = lbadapters.Describe(cmd.Context(), bs)
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(lbadapters.Report{Balancers: infos, Nodes: rows}); err != nil {
					return err
				}
			} else {
				c.printTable(bs, rows)
			}
			err = statusErr(bs, rows, infos)
			if warnOnly {
				return err
			}
			return outcomeErr(nil, append(errList(err), nodeProblems(bs, rows)...)...)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&warnOnly, "warn-only", false, "exit 0 when nodes are unhealthy, unreachable or not UP (only a balancer that cannot be read fails)")
	return cmd
}

// errList is err's failures one by one (none for nil).
func errList(err error) []error {
	var f failures
	switch {
	case err == nil:
		return nil
	case errors.As(err, &f):
		return f
	}
	return []error{err}
}

// nodeProblems are the nodes a monitor should hear about: an agent that is not healthy or
// cannot be reached, a balancer that does not have the node UP (balancers that could not be
// read are statusErr's).
func nodeProblems(bs []lbadapters.Named, rows []lbadapters.NodeStatus) []error {
	var out []error
	for _, r := range rows {
		switch {
		case r.Agent == nil:
			out = append(out, fmt.Errorf("%s: %s", r.Node.Name, r.AgentError))
		case r.Agent.State != lbadapters.AgentHealthy:
			why := r.Agent.State
			if r.Agent.Output != "" {
				why += ": " + r.Agent.Output
			}
			out = append(out, fmt.Errorf("%s: agent %s", r.Node.Name, why))
		}
		for j, v := range r.Balancers {
			if v.State != nil && v.State.State != lbadapters.StateUp {
				out = append(out, fmt.Errorf("%s: %s on balancer %s", r.Node.Name, v.State.Words(), bs[j].Name))
			}
		}
	}
	return out
}

// statusErr is the first error of each balancer (every row shares it), as failures.
func statusErr(bs []lbadapters.Named, rows []lbadapters.NodeStatus, infos []lbadapters.BalancerInfo) error {
	var f failures
	for j := range bs {
		var first error
		for _, r := range rows {
			if first = r.Balancers[j].Err; first != nil {
				break
			}
		}
		if first == nil && j < len(infos) {
			first = infos[j].Err
		}
		if first != nil {
			f = append(f, first)
		}
	}
	return outcomeErr(nil, f)
}

func (c *cli) printTable(bs []lbadapters.Named, rows []lbadapters.NodeStatus) {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	head := []string{"NODE", "ROLE", "ADDRESS", "AGENT"}
	for _, b := range bs {
		head = append(head, strings.ToUpper(b.Name))
	}
	fmt.Fprintln(w, strings.Join(append(head, "SESSIONS", "LAG", "SYNC AGE", "REASON"), "\t"))
	drainAgent := false
	for _, r := range rows {
		agent, reason := "unreachable", ""
		if r.Agent != nil {
			agent = r.Agent.State
			if r.Agent.State != lbadapters.AgentHealthy {
				reason = r.Agent.Output
			}
		} else {
			reason = r.AgentError
		}
		cells := []string{r.Node.Name, r.Node.Role, r.Node.Address, agent}
		total, counted, unknown := 0, false, false
		for _, v := range r.Balancers {
			if v.State == nil {
				cells = append(cells, "?")
				unknown = true
				if reason == "" {
					reason = v.Error
				}
				continue
			}
			cells = append(cells, v.State.Words())
			drainAgent = drainAgent || v.State.Status == "DRAIN (agent)"
			if v.State.Sessions != lbadapters.NotCounted {
				total, counted = total+v.State.Sessions, true
			}
			if reason == "" && v.State.State != lbadapters.StateUp {
				reason = v.State.Description
			}
		}
		sessions := "-"
		switch {
		case unknown:
			sessions = "?"
		case counted:
			sessions = strconv.Itoa(total)
		}
		cells = append(cells, sessions, lagText(r.Agent), syncAgeText(r.Agent), reason)
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	_ = w.Flush()
	if drainAgent {
		fmt.Fprintln(c.stdout, `note: HAProxy shows "DRAIN (agent)" for any drained server that has an agent-check, whoever drained it (lbadapter drain or the node's lbagent)`)
	}
}

// lagText is the LAG column: "-" when the agent shows no replication watch.
func lagText(a *lbadapters.AgentStatus) string {
	if a == nil || a.Components.Replication == nil {
		return "-"
	}
	r := a.Components.Replication
	if !r.Up {
		return "?"
	}
	s := units.Bytes(r.LagBytes)
	if r.LagSeconds >= 1 {
		s += " " + units.Seconds(r.LagSeconds)
	}
	if r.Paused {
		s += " paused"
	}
	return s
}

// syncAgeText is the SYNC AGE column: "-" when the agent shows no config sync.
func syncAgeText(a *lbadapters.AgentStatus) string {
	if a == nil || a.Components.Sync == nil {
		return "-"
	}
	y := a.Components.Sync
	s := "never"
	if y.AgeSeconds != nil {
		s = units.Seconds(*y.AgeSeconds)
	}
	if y.Paused {
		s += " paused"
	}
	return s
}
