package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/lbadapters/remote"
	"github.com/xroad-lb/lbkit/lbadapters/upgrade"
)

// exitStopped: the upgrade stopped (a failed step, Ctrl-C) and can be resumed.
const exitStopped = 7

// upgradeStopSignals stop an upgrade after its current step: Ctrl-C, SIGTERM and SIGHUP (the
// operator's terminal or SSH session closed; its default would end the process mid-step).
var upgradeStopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// stopOnSignals closes stop at the first of upgradeStopSignals (the upgrade stops after the
// current step) and calls abort at a second one (the current step is aborted). It ends with
// ctx or when the returned func is called.
func (c *cli) stopOnSignals(ctx context.Context, stop chan<- struct{}, abort func()) (release func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, upgradeStopSignals...)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-ctx.Done():
			return
		}
		by := ""
		if sig != os.Interrupt {
			by = " by " + signalName(sig)
		}
		fmt.Fprintf(c.stdout, "interrupted%s: stopping after the current step (Ctrl-C again to abort it now)\n", by)
		close(stop)
		select {
		case <-sigs:
			fmt.Fprintln(c.stdout, "interrupted again: aborting the current step")
			abort()
		case <-ctx.Done():
		}
	}()
	return func() {
		cancel()
		<-done
		signal.Stop(sigs)
	}
}

// signalName is "SIGHUP" for syscall.SIGHUP.
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		switch s {
		case syscall.SIGHUP:
			return "SIGHUP"
		case syscall.SIGTERM:
			return "SIGTERM"
		}
	}
	return sig.String()
}

func (c *cli) upgradeCmd() *cobra.Command {
	var (
		o                                          upgrade.Options
		nodes                                      string
		dryRun, resume, abandon, yes               bool
		statePath                                  string
		drainTimeout, healthTimeout, enableTimeout time.Duration
		preflightWait, poll                        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "upgrade --command CMD [--nodes ss1,ss3] [--offline] [--dry-run] [--yes] | --resume | --abandon",
		Short: "Upgrade every node of the cluster, the guide's chapter 7, as one resumable command",
		Long: `upgrade runs the X-Road guide's cluster upgrade (chapter 7) on the nodes of the cluster
config: it logs in to each node over SSH ([ssh] section, a node's ssh key; host keys are always
checked against known_hosts; the key comes from ssh-agent or [ssh] identity), runs the node-side
steps as lbagent subcommands there, and drains and enables the nodes on every balancer.

Online (default, the guide's 7.2):
  preflight  every agent reachable and healthy, every balancer shows every node UP, on the
             secondaries replication streaming and caught up and config sync current, SSH
             to every node with a known host key and lbagent there; refuses to start otherwise
             and says what to fix
  7.2.1      on every secondary: lbagent db pause, lbagent sync pause
  7.2.2      the primary: drain (every balancer, wait for no sessions), run CMD, wait until its
             lbagent reports it healthy with the new X-Road version, enable
  7.2.3      each secondary, one by one: drain, lbagent db resume, lbagent db wait-caught-up,
             run CMD, lbagent sync resume, lbagent sync --once, wait healthy, enable
With --offline (the guide's 7.1): drain every node, upgrade the primary, let the changes reach
the secondaries (db wait-caught-up, sync --once), upgrade the secondaries, enable every node.

The nodes' output is streamed with the node's name in front; every step prints one line with
its duration; the end prints a table (node, version before -> after, drain time, downtime,
result). --dry-run runs the preflight, prints the plan and changes nothing. The one
confirmation is skipped with --yes.

After every step the state file (--state, default ` + upgrade.DefaultStatePath + `) is written.
A failed step stops the run: its node stays drained (no traffic to a half-upgraded node), the
next node is not touched, and the exact command to continue is printed; --resume reruns the
failed step and goes on. Ctrl-C stops at the next safe point (after the current step) the same
way, and so do SIGTERM and SIGHUP (the terminal or SSH session closed); a second Ctrl-C
aborts the current step. While an upgrade is unfinished, a new one is
refused: --resume it, or --abandon it (forgets the state; the nodes stay as they are, the
command lists what is still drained or paused).

Exit codes: 0 done (or the dry run's plan), 2 bad usage or config, 1 the preflight refused or
something else failed, 7 stopped (a failed step or Ctrl-C): resume with --resume.`,
		Example: `  lbadapter upgrade --command 'apt-get -y install --only-upgrade xroad-securityserver' --dry-run
  lbadapter upgrade --command 'apt-get -y install --only-upgrade xroad-securityserver' --yes
  lbadapter upgrade --resume
  lbadapter upgrade --command 'apt-get -y install --only-upgrade xroad-securityserver' --nodes ss2,ss3`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("upgrade takes no arguments (got %q); quote the --command", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if resume && abandon {
				return usageError{errors.New("--resume and --abandon exclude each other")}
			}
			if (resume || abandon) && (cmd.Flags().Changed("command") || cmd.Flags().Changed("nodes") || o.Offline || dryRun) {
				return usageError{errors.New("--resume and --abandon take the plan from the state file: no --command, --nodes, --offline or --dry-run")}
			}
			if !resume && !abandon && strings.TrimSpace(o.Command) == "" {
				return usageError{errors.New("--command is required, e.g. --command 'apt-get -y install --only-upgrade xroad-securityserver'")}
			}
			if cmd.Flags().Changed("nodes") {
				for _, n := range strings.Split(nodes, ",") {
					if n = strings.TrimSpace(n); n != "" {
						o.Nodes = append(o.Nodes, n)
					}
				}
				if len(o.Nodes) == 0 {
					return usageError{fmt.Errorf("--nodes %q names no node (e.g. --nodes ss2,ss3; without --nodes every node)", nodes)}
				}
			}
			for _, d := range []struct {
				flag string
				v    time.Duration
				zero bool // 0 is allowed
			}{{"--drain-timeout", drainTimeout, false}, {"--health-timeout", healthTimeout, false},
				{"--enable-timeout", enableTimeout, false}, {"--poll", poll, false}, {"--preflight-wait", preflightWait, true}} {
				if err := checkDuration(d.flag, d.v, d.zero); err != nil {
					return err
				}
			}
			abs, err := filepath.Abs(statePath)
			if err != nil {
				return usageError{err}
			}
			statePath = abs
			cfg, bs, err := c.load(cmd.Context())
			if err != nil {
				return err
			}
			u := &upgrade.Upgrader{Config: cfg, Balancers: bs, Agent: lbadapters.HTTPAgent{}, Out: c.stdout, StatePath: statePath,
				Poll: poll, DrainTimeout: drainTimeout, HealthTimeout: healthTimeout, EnableTimout: enableTimeout,
				Dial: func(ctx context.Context, n lbadapters.Node) (upgrade.Remote, error) { return dialNode(ctx, cfg, n) }}
			defer u.Close()
			return c.upgrade(cmd, u, o, statePath, upgradeMode{dryRun: dryRun, resume: resume, abandon: abandon, yes: yes, preflightWait: preflightWait})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Command, "command", "", "the upgrade command run on each node over SSH, e.g. 'apt-get -y install --only-upgrade xroad-securityserver'")
	f.StringVar(&nodes, "nodes", "", "upgrade only these nodes (comma-separated names of the cluster config); the primary always goes first")
	f.BoolVar(&o.Offline, "offline", false, "the guide's offline upgrade (7.1): every node out of traffic for the whole run")
	f.BoolVar(&dryRun, "dry-run", false, "run the preflight, print the plan (every step, node and command) and change nothing")
	f.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	f.BoolVar(&resume, "resume", false, "continue an unfinished upgrade at its failed or next step (the plan comes from the state file)")
	f.BoolVar(&abandon, "abandon", false, "forget an unfinished upgrade (the nodes stay as they are: the command lists what is drained or paused)")
	f.StringVar(&statePath, "state", upgrade.DefaultStatePath, "the checkpoint file, written after every step")
	f.DurationVar(&drainTimeout, "drain-timeout", upgrade.DefaultDrainTimeout, "give up waiting for a node's sessions to end after this long")
	f.DurationVar(&healthTimeout, "health-timeout", upgrade.DefaultHealthTimeout, "give up waiting for a node to be healthy with the new version after this long")
	f.DurationVar(&enableTimeout, "enable-timeout", upgrade.DefaultEnableTimeout, "give up waiting for a node to be UP after this long")
	f.DurationVar(&preflightWait, "preflight-wait", upgrade.DefaultPreflightWait, "how long the preflight waits for a condition that is not met yet (a replication lag)")
	f.DurationVar(&poll, "poll", lbadapters.DefaultPoll, "how often to look at the balancers and agents while waiting")
	return cmd
}

type upgradeMode struct {
	dryRun, resume, abandon, yes bool
	preflightWait                time.Duration
}

func (c *cli) upgrade(cmd *cobra.Command, u *upgrade.Upgrader, o upgrade.Options, statePath string, m upgradeMode) error {
	unlock, err := upgrade.Lock(statePath)
	if err != nil {
		return err
	}
	defer unlock()
	prev, err := upgrade.LoadState(statePath)
	switch {
	case errors.Is(err, upgrade.ErrNoState) && (m.resume || m.abandon):
		return usageError{fmt.Errorf("nothing to %s: %w", map[bool]string{true: "resume", false: "abandon"}[m.resume], err)}
	case errors.Is(err, upgrade.ErrNoState):
	case err != nil:
		return err
	}
	if m.abandon {
		if err := os.Rename(statePath, statePath+".abandoned"); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "abandoned the upgrade started %s (state kept as %s)\n", prev.Started.Format(time.RFC3339), statePath+".abandoned")
		printLeftovers(c.stdout, prev)
		return nil
	}
	if prev != nil && !prev.Complete() && !m.resume {
		return usageError{fmt.Errorf("an upgrade started %s is unfinished (%s): continue it with --resume or forget it with --abandon",
			prev.Started.Format(time.RFC3339), statePath)}
	}
	if m.resume && prev.Complete() {
		fmt.Fprintf(c.stdout, "the upgrade started %s is complete; nothing to resume\n", prev.Started.Format(time.RFC3339))
		upgrade.WriteTable(c.stdout, upgrade.Summarize(prev))
		return nil
	}
	ctx := context.WithoutCancel(cmd.Context())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	st := prev
	if !m.resume {
		steps, err := upgrade.Plan(u.Config, o)
		if err != nil {
			return usageError{err}
		}
		// Until the first step, Ctrl-C simply ends the command: nothing was changed.
		before, err := u.Preflight(cmd.Context(), steps, m.preflightWait)
		if errors.Is(err, upgrade.ErrPreflight) {
			// One line per problem, then the one-line error.
			fmt.Fprintln(c.stderr, err)
			return errors.New("the preflight refused the upgrade: nothing was changed")
		}
		if err != nil {
			return err
		}
		printPlan(c.stdout, steps, o)
		if m.dryRun {
			fmt.Fprintln(c.stdout, "dry run: nothing was changed")
			return nil
		}
		if !m.yes && !confirm(cmd.Context(), cmd.InOrStdin(), c.stdout, fmt.Sprintf("Run these %d steps?", len(steps))) {
			return errors.New("not confirmed: nothing was changed (--yes skips the question)")
		}
		if err := cmd.Context().Err(); err != nil {
			return err
		}
		st = &upgrade.State{Config: u.Config.Path, Options: o, Started: time.Now().UTC(), Before: before, Steps: steps}
		if err := st.Save(statePath); err != nil {
			return err
		}
	} else {
		i := st.Next()
		fmt.Fprintf(c.stdout, "resuming the upgrade started %s at step %d of %d (%s: %s)\n",
			st.Started.Format(time.RFC3339), i+1, len(st.Steps), st.Steps[i].Node, st.Steps[i].Kind)
	}

	stop := make(chan struct{})
	u.Stop = stop
	defer c.stopOnSignals(ctx, stop, cancel)()

	start := time.Now()
	runErr := u.Run(ctx, st)
	fmt.Fprintln(c.stdout)
	upgrade.WriteTable(c.stdout, upgrade.Summarize(st))
	if runErr == nil {
		fmt.Fprintf(c.stdout, "upgrade complete: %d nodes in %s (this run %s)\n", len(upgrade.Summarize(st)),
			st.Finished.Sub(st.Started).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	resumeCmd := resumeCommand(c.configPath, statePath)
	fmt.Fprintf(c.stdout, "upgrade stopped: %v\n", runErr)
	printLeftovers(c.stdout, st)
	fmt.Fprintf(c.stdout, "fix the cause, then continue with:\n  %s\n", resumeCmd)
	return stoppedError{runErr}
}

// stoppedError is a run that stopped and can be resumed (exit 7).
type stoppedError struct{ err error }

func (e stoppedError) Error() string { return "upgrade stopped; resume with --resume" }
func (e stoppedError) Unwrap() error { return e.err }

// printLeftovers says which nodes are drained and where replay or sync is still paused.
func printLeftovers(w io.Writer, st *upgrade.State) {
	if d := upgrade.Drained(st); len(d) > 0 {
		fmt.Fprintf(w, "still drained on every balancer: %s (no traffic until the upgrade enables them, or lbadapter enable NODE)\n", strings.Join(d, ", "))
	}
	var replay, sync []string
	for _, s := range st.Steps {
		if s.Status != upgrade.Done {
			continue
		}
		switch s.Kind {
		case upgrade.KindPauseReplay:
			replay = append(replay, s.Node)
		case upgrade.KindPauseSync:
			sync = append(sync, s.Node)
		case upgrade.KindResumeReplay:
			replay = remove(replay, s.Node)
		case upgrade.KindResumeSync:
			sync = remove(sync, s.Node)
		}
	}
	if len(replay) > 0 {
		fmt.Fprintf(w, "serverconf replay still paused on: %s\n", strings.Join(replay, ", "))
	}
	if len(sync) > 0 {
		fmt.Fprintf(w, "config sync still paused on: %s\n", strings.Join(sync, ", "))
	}
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// resumeCommand is the exact command line that continues the run.
func resumeCommand(config, state string) string {
	if abs, err := filepath.Abs(config); err == nil {
		config = abs
	}
	return fmt.Sprintf("lbadapter --config %s upgrade --resume --state %s", shellQuote(config), shellQuote(state))
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()*?[]{}~!#") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printPlan prints every step.
func printPlan(w io.Writer, steps []upgrade.Step, o upgrade.Options) {
	mode := "online rolling upgrade (guide 7.2)"
	if o.Offline {
		mode = "offline upgrade (guide 7.1): every node out of traffic until the end"
	}
	fmt.Fprintf(w, "plan: %s, %d steps\n", mode, len(steps))
	for i, s := range steps {
		fmt.Fprintf(w, "  %2d. %-6s %-14s %s\n", i+1, s.Node, s.Kind, s.Describe())
	}
}

// confirm asks a yes/no question on out and reads the answer from in; Ctrl-C (ctx) is a no.
func confirm(ctx context.Context, in io.Reader, out io.Writer, q string) bool {
	fmt.Fprintf(out, "%s [y/N] ", q)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(in).ReadString('\n')
		answer <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false
	case line := <-answer:
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes"
	}
}

// dialNode logs in to the node as the cluster config says.
func dialNode(ctx context.Context, cfg *lbadapters.Config, n lbadapters.Node) (upgrade.Remote, error) {
	user, addr, _ := cfg.SSHAddr(n)
	kh := cfg.SSH.KnownHosts
	if kh == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("no [ssh] known-hosts and no home directory: %w", err)
		}
		kh = filepath.Join(home, ".ssh", "known_hosts")
	}
	cl, err := remote.Dial(ctx, remote.Options{User: user, Addr: addr, Identity: cfg.SSH.Identity, KnownHosts: kh})
	if err != nil {
		return nil, err
	}
	return cl, nil
}
