// Command lbadapter is the operator's tool for a cluster of X-Road security servers behind a
// load balancer: it shows the cluster's state and drains or enables one node.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/aws/targetgroup"
	"github.com/xroad-lb/lbkit/internal/clidoc"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/lbadapters/haproxyadapter"
	"github.com/xroad-lb/lbkit/lbadapters/nginxadapter"
)

// Exit codes, documented in --help and docs/lbadapter.md.
const (
	exitOK          = 0
	exitFailure     = 1 // anything else
	exitUsage       = 2 // bad flags, bad config file, unknown node
	exitUnreachable = 3 // the balancer's API cannot be reached or refused the command
	exitNotFound    = 4 // the balancer does not know the backend or server
	exitTimeout     = 5 // drain/enable did not finish within --timeout
	exitNotReady    = 6 // enable refused: the node's agent does not report it healthy
)

const exitCodesHelp = `Exit codes:
  0  done (drained, enabled; status: every node's agent healthy and UP on every balancer)
  1  status: a node's agent is unhealthy, in maintenance or unreachable, or a balancer does not
     have it UP (exit 0 with --warn-only); any other failure
  2  bad usage, bad config file or unknown node
  3  balancer unreachable, or it refused the command (permission denied, bad credentials,
     nginx -t refused the configuration, nginx not running)
  4  the balancer has no such backend, server, target group or target
  5  timed out waiting for the drain or for UP
  6  enable refused: the node's agent is not healthy (use --force)
  7  upgrade stopped (a failed step, Ctrl-C): continue with lbadapter upgrade --resume
  130 interrupted (the node stays in the state set so far)
With several balancers, every failure is one line naming its balancer and the exit code is
the highest of theirs.`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// cli holds what every command needs.
type cli struct {
	configPath string
	stdout     io.Writer
	stderr     io.Writer
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr)
}

// runContext runs the command line; ctx ends at Ctrl-C (SIGINT) or SIGTERM.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "lbadapter",
		Short: "Drain, enable, inspect and upgrade the nodes of an X-Road cluster behind a load balancer",
		Long: `lbadapter drives the load balancers in front of a cluster of X-Road security servers
(HAProxy through its runtime API, AWS ELBv2 target groups through the AWS API, nginx
upstreams through servers files, nginx -t and a graceful reload) and reads each node's
lbagent. Every command acts on every balancer of the cluster config; "watch" keeps nginx
upstreams in line with the nodes' agents; "upgrade" runs the guide's cluster upgrade
(chapter 7) on every node over SSH, resumable (docs/upgrade.md).

The cluster config file (INI) lists the nodes and the balancers; see docs/lbadapter.md and
docs/aws.md, docs/nginx.md. AWS credentials and region come from the SDK's usual sources (AWS_PROFILE,
AWS_REGION, AWS_ACCESS_KEY_ID, shared config, SSO, instance roles).

` + exitCodesHelp,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&c.configPath, "config", "c", lbadapters.DefaultConfigPath,
		"cluster config file (INI: [balancer \"NAME\"] sections and one [node \"NAME\"] per node)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(c.statusCmd(), c.drainCmd(), c.enableCmd(), c.watchCmd(), c.checkConfigCmd(), c.upgradeCmd(), clidoc.Command())
	root.SetArgs(args)
	return report(ctx, stderr, root.ExecuteContext(ctx))
}

// report prints err as one line per failure ("lbadapter: ...") and returns the exit code:
// the highest of the failures' codes.
func report(ctx context.Context, stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var f failures
	if !errors.As(err, &f) {
		f = failures{err}
	}
	code := exitOK
	for _, e := range f {
		fmt.Fprintln(stderr, "lbadapter:", oneLine(e.Error()))
		code = max(code, exitCode(ctx, e))
	}
	return code
}

// oneLine keeps an error on one line whatever a library put in it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// usageError marks bad input (flags, arguments, config, unknown node).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(ctx context.Context, err error) int {
	var ue usageError
	var se stoppedError
	switch {
	case errors.As(err, &se):
		return exitStopped
	case ctx.Err() != nil:
		return 130
	case errors.As(err, &ue), errors.Is(err, lbadapters.ErrUnknownNode), isCobraUsage(err):
		return exitUsage
	case errors.Is(err, lbadapters.ErrUnreachable), errors.Is(err, lbadapters.ErrDenied):
		return exitUnreachable
	case errors.Is(err, lbadapters.ErrNotFound):
		return exitNotFound
	case errors.Is(err, lbadapters.ErrTimeout):
		return exitTimeout
	case errors.Is(err, lbadapters.ErrNotReady):
		return exitNotReady
	}
	return exitFailure
}

// isCobraUsage recognises cobra's own error for an unknown command (flag and argument
// errors are wrapped in usageError where they arise).
func isCobraUsage(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command")
}

// nodeArg accepts exactly one NODE argument.
func nodeArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("%s needs exactly one NODE argument (see --help)", cmd.Name())}
	}
	return nil
}

// load reads the config and builds the adapter of every balancer.
func (c *cli) load(ctx context.Context) (*lbadapters.Config, []lbadapters.Named, error) {
	cfg, err := lbadapters.Load(c.configPath)
	if err != nil {
		return nil, nil, usageError{err}
	}
	bs := make([]lbadapters.Named, 0, len(cfg.Balancers))
	for _, bc := range cfg.Balancers {
		b, err := newAdapter(ctx, bc)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: [balancer %q]: %w", c.configPath, bc.Name, err)
		}
		bs = append(bs, lbadapters.Named{Name: bc.Name, Type: bc.Type, Balancer: b})
	}
	return cfg, bs, nil
}

// newAdapter builds the adapter of a balancer's type.
func newAdapter(ctx context.Context, bc lbadapters.BalancerConfig) (lbadapters.Balancer, error) {
	switch bc.Type {
	case lbadapters.TypeHAProxy:
		b, err := haproxyadapter.New(bc)
		if err != nil {
			return nil, usageError{err}
		}
		return b, nil
	case lbadapters.TypeNginx:
		b, err := nginxadapter.New(bc)
		if err != nil {
			return nil, usageError{err}
		}
		return b, nil
	case lbadapters.TypeAWS:
		b, err := targetgroup.New(ctx, bc)
		if err != nil {
			return nil, usageError{err}
		}
		return b, nil
	}
	return nil, usageError{fmt.Errorf("balancer type %q is not supported", bc.Type)}
}

// loadNode is load plus the named node (an unknown name is a usage error).
func (c *cli) loadNode(ctx context.Context, name string) (lbadapters.Node, []lbadapters.Named, error) {
	cfg, bs, err := c.load(ctx)
	if err != nil {
		return lbadapters.Node{}, nil, err
	}
	n, err := cfg.Node(name)
	if err != nil {
		return lbadapters.Node{}, nil, usageError{err}
	}
	return n, bs, nil
}

// failures is the errors of several balancers: one line each, exit code the worst.
type failures []error

func (f failures) Error() string {
	lines := make([]string, len(f))
	for i, err := range f {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// outcomeErr is nil when every balancer succeeded, the one error, or failures; more
// failures may be passed in.
func outcomeErr(out []lbadapters.Outcome, f ...error) error {
	for _, o := range out {
		if o.Err != nil {
			f = append(f, o.Err)
		}
	}
	switch len(f) {
	case 0:
		return nil
	case 1:
		return f[0]
	}
	return failures(f)
}
