package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/lbadapters"
)

func (c *cli) statusCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every node: role, agent verdict, balancer state, sessions, replication lag and sync age",
		Long: `status shows one row per node of the cluster config:

  NODE      the node's name in the config file
  ROLE      primary, secondary or standalone (from the config; the agent's view in -o json)
  AGENT     the node's lbagent verdict from http://ADDRESS:HEALTH-PORT/status:
            healthy, unhealthy, maintenance, or unreachable
  BALANCER  the balancer's state of the node's server: UP, DOWN, DRAIN, MAINT, NOLB,
            with HAProxy's own words, e.g. "DRAIN (agent)", "DOWN 1/2"
  SESSIONS  current connections through the balancer to the node (HAProxy scur)
  LAG       a secondary's serverconf replication lag: WAL received but not replayed
            (B, kB, MB, GB; 1024-based), the age of the last replayed transaction while
            behind, "paused" while replay is paused; "?" when the agent cannot read its
            standby, "-" on nodes without a replication watch (the primary)
  SYNC AGE  time since a secondary's last successful config sync pass, "never" before
            the first, "paused" while the pause file exists; "-" without config sync
  REASON    why the agent is not healthy, or why a part could not be read

An unreachable agent is shown as such; an unreachable balancer or a wrong backend makes the
exit code non-zero after the table is printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("-o %q: want table or json", output)}
			}
			cfg, b, err := c.load()
			if err != nil {
				return err
			}
			rows := lbadapters.Status(cmd.Context(), cfg, b, lbadapters.HTTPAgent{})
			if output == "json" {
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rows); err != nil {
					return err
				}
			} else {
				c.printTable(rows)
			}
			// Every row shares the balancer, so its first error stands for all of them.
			for _, r := range rows {
				if r.BalancerErr != nil {
					return r.BalancerErr
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func (c *cli) printTable(rows []lbadapters.NodeStatus) {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tADDRESS\tAGENT\tBALANCER\tSESSIONS\tLAG\tSYNC AGE\tREASON")
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
		bal, sessions := "?", "?"
		if r.Balancer != nil {
			bal, sessions = r.Balancer.Status, strconv.Itoa(r.Balancer.Sessions)
		} else if reason == "" {
			reason = r.BalancerError
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Node.Name, r.Node.Role, r.Node.Address,
			agent, bal, sessions, lagText(r.Agent), syncAgeText(r.Agent), reason)
	}
	_ = w.Flush()
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
	s := byteSize(r.LagBytes)
	if r.LagSeconds >= 1 {
		s += " " + seconds(r.LagSeconds)
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
		s = seconds(*y.AgeSeconds)
	}
	if y.Paused {
		s += " paused"
	}
	return s
}

// byteSize prints n in the units of [replication] lag-limit (1024-based B, kB, MB, GB).
func byteSize(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return strconv.FormatInt(n, 10) + "B"
	case n < k*k:
		return strconv.FormatFloat(float64(n)/k, 'f', 1, 64) + "kB"
	case n < k*k*k:
		return strconv.FormatFloat(float64(n)/(k*k), 'f', 1, 64) + "MB"
	}
	return strconv.FormatFloat(float64(n)/(k*k*k), 'f', 1, 64) + "GB"
}

// seconds prints a duration in seconds rounded to whole seconds (Go's form: 4s, 5m0s).
func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}
