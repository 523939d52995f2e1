// Command lbagent runs on every node of an X-Road security server cluster: the health check
// that load balancers probe, maintenance mode, and node-local operations.
package main

import (
	"fmt"
	"os"

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

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}
