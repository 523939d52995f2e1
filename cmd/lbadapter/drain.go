package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/lbadapters"
)

func (c *cli) drainCmd() *cobra.Command {
	var (
		timeout time.Duration
		noWait  bool
		poll    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Stop new traffic to a node and wait until its connections are gone",
		Long: `drain sets the node's server to DRAIN in the balancer: new connections go to the other
nodes, connections already open keep flowing. It then waits until the balancer counts no
session to the node, printing a progress line (sessions left, elapsed) to stderr, and exits 0.
The node stays drained until "lbadapter enable NODE"; lbagent never lifts an operator's drain.

If sessions are still open after --timeout, it exits 5 (the node stays drained).`,
		Example: "  lbadapter drain ss2\n  lbadapter drain ss2 --timeout 30m\n  lbadapter drain ss2 --no-wait",
		Args:    nodeArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, b, err := c.loadNode(args[0])
			if err != nil {
				return err
			}
			w := lbadapters.Wait{NoWait: noWait, Timeout: timeout, Poll: poll, Progress: c.progress()}
			s, err := lbadapters.Drain(cmd.Context(), b, n, w)
			if err != nil {
				return err
			}
			if noWait {
				fmt.Fprintf(c.stdout, "%s: %s, %d sessions left (not waiting)\n", n.Name, s.Status, s.Sessions)
			} else {
				fmt.Fprintf(c.stdout, "%s: drained (%s, no sessions left)\n", n.Name, s.Status)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up waiting after this long (0 = no limit)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "set DRAIN and return at once")
	cmd.Flags().DurationVar(&poll, "poll", lbadapters.DefaultPoll, "how often to look at the balancer while waiting")
	return cmd
}

func (c *cli) enableCmd() *cobra.Command {
	var (
		timeout time.Duration
		force   bool
		poll    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "enable NODE",
		Short: "Give a node traffic again and wait until the balancer shows it UP",
		Long: `enable first asks the node's lbagent (/status) whether the node is healthy and refuses
(exit 6) when it is in maintenance mode, failing a check or unreachable, unless --force.
It then sets the node's server to READY in the balancer (lifting DRAIN and MAINT) and waits
until the balancer reports it UP, which needs the balancer's health checks to pass.

If the node is not UP after --timeout, it exits 5.`,
		Example: "  lbadapter enable ss2\n  lbadapter enable ss2 --timeout 5m",
		Args:    nodeArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, b, err := c.loadNode(args[0])
			if err != nil {
				return err
			}
			if err := lbadapters.Ready(cmd.Context(), lbadapters.HTTPAgent{}, n); err != nil {
				if !force {
					return fmt.Errorf("enable %s refused: %w (use --force to enable anyway)", n.Name, err)
				}
				fmt.Fprintf(c.stderr, "lbadapter: warning: %v; enabling anyway (--force)\n", err)
			}
			w := lbadapters.Wait{Timeout: timeout, Poll: poll, Progress: c.progress()}
			s, err := lbadapters.Enable(cmd.Context(), b, n, w)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s: enabled (%s, %d sessions)\n", n.Name, s.Status, s.Sessions)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up waiting for UP after this long (0 = no limit)")
	cmd.Flags().BoolVar(&force, "force", false, "enable even when the node's agent does not report it healthy")
	cmd.Flags().DurationVar(&poll, "poll", lbadapters.DefaultPoll, "how often to look at the balancer while waiting")
	return cmd
}

// progress prints a line to stderr whenever the state or the session count changes, and at
// least every 10 seconds while nothing changes.
func (c *cli) progress() func(lbadapters.Progress) {
	var last lbadapters.ServerState
	var lastAt time.Duration = -1
	return func(p lbadapters.Progress) {
		if p.State == last && lastAt >= 0 && p.Elapsed-lastAt < 10*time.Second {
			return
		}
		last, lastAt = p.State, p.Elapsed
		fmt.Fprintf(c.stderr, "%s %s: %s, %d sessions left, %s elapsed\n",
			p.Op, p.Node, p.State.Status, p.State.Sessions, p.Elapsed.Round(100*time.Millisecond))
	}
}
