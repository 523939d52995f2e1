package main

import (
	"errors"
	"fmt"
	"sync"
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
		Short: "Stop new traffic to a node on every balancer and wait until its connections are gone",
		Long: `drain takes the node out of rotation on every balancer of the cluster config, all at once:
  haproxy  sets the node's server to DRAIN: new connections go to the other nodes, open ones
           keep flowing; done when HAProxy counts no session to the node. A server in
           MAINT stays MAINT (a drain would turn its health checks and persistent
           connections back on); drain then waits for its sessions the same way.
  aws      deregisters the node's target from the ELBv2 target group (DeregisterTargets);
           the target is "draining" for the group's deregistration delay; done when it is
           no longer registered ("unused").
  nginx    marks the node's line in the servers file "down" (the operator's), checks with
           nginx -t (a refusal puts the file back, no reload), reloads nginx gracefully; done
           when no nginx worker holds a connection to the node (old workers finish theirs).
It prints a progress line per balancer to stderr whenever the state changes (and every 10 s),
e.g. "drain ss2 [nlb]: draining, 45s of up to 300s", and exits 0 when every balancer is done.
The node stays drained until "lbadapter enable NODE"; lbagent never lifts an operator's drain.

If a balancer is not done after --timeout, it exits 5 (the node stays drained). Ctrl-C
stops the wait with exit 130 and says the state the node stays in (e.g. "interrupted; ss2
stays DRAIN, 1 session left").`,
		Example: "  lbadapter drain ss2\n  lbadapter drain ss2 --timeout 30m\n  lbadapter drain ss2 --no-wait",
		Args:    nodeArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := errors.Join(checkDuration("--timeout", timeout, true), checkDuration("--poll", poll, false)); err != nil {
				return err
			}
			n, bs, err := c.loadNode(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			w := lbadapters.Wait{NoWait: noWait, Timeout: timeout, Poll: poll, Progress: c.progress()}
			out := lbadapters.DrainAll(cmd.Context(), unlabelled(bs), n, w)
			for _, o := range out {
				if o.Err != nil {
					continue
				}
				if o.KeptMaint {
					fmt.Fprintf(c.stdout, "%s: already %s, kept (a drain would turn health checks and persistent connections back on)%s\n",
						label(n, o.Balancer), o.State.Words(), sessions(o.State, " left"))
					continue
				}
				if noWait {
					fmt.Fprintf(c.stdout, "%s: %s%s (not waiting)\n", label(n, o.Balancer), o.State.Words(), sessions(o.State, " left"))
				} else {
					fmt.Fprintf(c.stdout, "%s: drained (%s%s)\n", label(n, o.Balancer), o.State.Words(), sessions(o.State, " left"))
				}
			}
			return outcomeErr(out)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up waiting after this long (0 = no limit)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "take the node out of rotation and return at once")
	cmd.Flags().DurationVar(&poll, "poll", lbadapters.DefaultPoll, "how often to look at each balancer while waiting")
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
		Short: "Give a node traffic again on every balancer and wait until each shows it UP",
		Long: `enable first asks the node's lbagent (/status) whether the node is healthy and refuses
(exit 6) when it is in maintenance mode, failing a check or unreachable, unless --force.
It then puts the node back on every balancer of the cluster config, all at once:
  haproxy  sets the node's server to READY (lifting DRAIN and MAINT); done when HAProxy
           shows it UP, which needs HAProxy's health checks to pass (rise x inter).
  aws      registers the node's target in the ELBv2 target group (RegisterTargets); done
           when the target is "healthy", which needs the group's healthy threshold of
           passing health checks. Progress lines show "initial", and while "unhealthy"
           AWS's reason and description.
  nginx    lifts the operator's "down" of the node's line (nginx -t, graceful reload); done
           when the line takes traffic (a "down" of lbadapter watch waits for the agent).

If a balancer does not show the node UP after --timeout, it exits 5.`,
		Example: "  lbadapter enable ss2\n  lbadapter enable ss2 --timeout 5m",
		Args:    nodeArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := errors.Join(checkDuration("--timeout", timeout, true), checkDuration("--poll", poll, false)); err != nil {
				return err
			}
			n, bs, err := c.loadNode(cmd.Context(), args[0])
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
			out := lbadapters.EnableAll(cmd.Context(), unlabelled(bs), n, w)
			for _, o := range out {
				if o.Err == nil {
					fmt.Fprintf(c.stdout, "%s: enabled (%s%s)\n", label(n, o.Balancer), o.State.Words(), sessions(o.State, ""))
				}
			}
			return outcomeErr(out)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up waiting for UP after this long (0 = no limit)")
	cmd.Flags().BoolVar(&force, "force", false, "enable even when the node's agent does not report it healthy")
	cmd.Flags().DurationVar(&poll, "poll", lbadapters.DefaultPoll, "how often to look at each balancer while waiting")
	return cmd
}

// checkDuration refuses a negative duration flag, and 0 unless zero allows it (for a
// timeout, 0 = no limit): a usage error.
func checkDuration(flag string, d time.Duration, zero bool) error {
	switch {
	case d < 0:
		return usageError{fmt.Errorf("%s %s: want a positive duration", flag, d)}
	case d == 0 && !zero:
		return usageError{fmt.Errorf("%s 0: want a positive duration", flag)}
	}
	return nil
}

// unlabelled drops the balancer's name from messages when the cluster has only one, so
// that lines read "drain ss2: ..." instead of "drain ss2 [nlb]: ...".
func unlabelled(bs []lbadapters.Named) []lbadapters.Named {
	if len(bs) != 1 {
		return bs
	}
	return []lbadapters.Named{{Type: bs[0].Type, Balancer: bs[0].Balancer}}
}

// label names the node in a result line: "ss2", or "ss2 [nlb]" with several balancers.
func label(n lbadapters.Node, balancer string) string {
	if balancer == "" {
		return n.Name
	}
	return n.Name + " [" + balancer + "]"
}

// sessions is ", 3 sessions"+suffix for a balancer that counts sessions, else "".
func sessions(s lbadapters.ServerState, suffix string) string {
	if s.Sessions == lbadapters.NotCounted {
		return ""
	}
	return ", " + lbadapters.Sessions(s.Sessions) + suffix
}

// progress prints a line to stderr whenever a balancer's state or session count changes, and
// at least every 10 seconds while nothing changes. Balancers report from their own goroutines.
func (c *cli) progress() func(lbadapters.Progress) {
	type last struct {
		state lbadapters.ServerState
		at    time.Duration
	}
	var mu sync.Mutex
	seen := map[string]last{}
	return func(p lbadapters.Progress) {
		mu.Lock()
		defer mu.Unlock()
		l, ok := seen[p.Balancer]
		if ok && p.State == l.state && p.Elapsed-l.at < 10*time.Second {
			return
		}
		seen[p.Balancer] = last{p.State, p.Elapsed}
		fmt.Fprintln(c.stderr, p.String())
	}
}
