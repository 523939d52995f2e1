// Command lbagent runs on every node of an X-Road security server cluster: the health check
// that load balancers probe, maintenance mode, and node-local operations.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/internal/clidoc"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	root := &cobra.Command{
		Use:   "lbagent",
		Short: "Load-balancer agent for a node of an X-Road security server cluster",
		Long: `lbagent runs on every node of an X-Road security server cluster.

"lbagent run" serves the X-Road compatible health check port that the load balancer probes
(/etc/xroad/conf.d/local.ini [proxy] health-check-port), the loopback admin port with
maintenance mode (127.0.0.1:5566), a JSON status document (/status) and metrics (/metrics).
It reads X-Road's own files, so nothing is configured twice.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newRunCmd(),
		newMaintenanceCmd(),
		newStatusCmd(),
		newDoctorCmd(),
		newDBCmd(),
		newCertsCmd(),
		newSyncCmd(),
		clidoc.Command(),
	)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	markUsage(root)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lbagent:", err)
		return exitCode(err)
	}
	return 0
}

// exitError carries a specific exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit codes shared by every command (a command may document more, as sync --once does).
const (
	exitUsage       = 2   // bad flags, arguments or command
	exitInterrupted = 130 // Ctrl-C (SIGINT) or SIGTERM while the command waited
)

// usageError marks bad input on the command line: exit status 2.
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// markUsage makes every argument error a usage error, and a command that only groups
// subcommands refuse an unknown one (cobra would print the help and exit 0).
func markUsage(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageError(err)
			}
			return nil
		}
	}
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usageError(fmt.Errorf("unknown command %q for %q (see %s --help)", a[0], cmd.CommandPath(), cmd.CommandPath()))
			}
			return cmd.Help()
		}
	}
	for _, sub := range c.Commands() {
		markUsage(sub)
	}
}

func exitCode(err error) int {
	var e *exitError
	switch {
	case errors.As(err, &e):
		return e.code
	case strings.HasPrefix(err.Error(), "unknown command"):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return 1
}
