package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/doctor"
)

func newDoctorCmd() *cobra.Command {
	var o doctor.Options
	var debug bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this node's X-Road files against the load-balancer guide and say what to fix",
		Long: `doctor reads this node's files and prints one line per check with the chapter of X-Road's
External Load Balancer Installation Guide it comes from:

  3.3    conf.d/node.ini [node] type set (master or slave)
  3.4    [proxy] health-check-port enabled, on an interface a balancer can reach
  3.4    the health check port answers an HTTP GET with 200, 500 or 503 (a wildcard
         interface is probed on 127.0.0.1)
  3.2    [proxy] server-support-clients-pooled-connections = false (the guide asks for no
         hikari setting besides, so none is checked)
  3.4    ports free or held by their program: 5500 and 5577 (X-Road's proxy), the health check
         port (lbagent or X-Road's proxy), the agent-check port and --admin (lbagent)
  3.3    db.properties: serverconf on the replicated instance, not 5432 (primary and secondaries)
  4.1    /etc/xroad/postgresql ca.crt, server.crt, server.key owned by postgres, the key 0600
  4.3    the primary's serverconf pg_hba.conf has a hostssl replication rule for +slavenode
         with cert (or scram-sha-256) authentication (primary)
  6.2    the serverconf standby's WAL receiver is streaming from the primary (secondaries)
  5.1    the sync's SSH key and known_hosts (secondaries)
  7.2.1  the pause flag /var/tmp/xroad/sync-disabled (secondaries; a warning while present)
  3.1    clock offset to the primary at most 1s, from the primary lbagent's /status on its
         health port ([sync] primary's host, or --primary-agent; skipped when unknown)

Exit code: the worst finding: 0 all fine, 1 a warning, 2 something to fix.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			findings := doctor.Check(o)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, f := range findings {
				if f.Severity == doctor.Skipped && !debug {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Severity, f.Chapter, f.Message)
			}
			tw.Flush()
			if w := doctor.Worst(findings); w != doctor.OK {
				return &exitError{code: int(w), err: fmt.Errorf("doctor: %d finding(s) to look at", count(findings, w))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.XRoadDir, "xroad-dir", "/etc/xroad", "X-Road configuration directory")
	cmd.Flags().StringVar(&o.PostgresUser, "postgres-user", "postgres", "the user that must own the serverconf TLS files")
	cmd.Flags().StringVar(&o.Admin, "admin", "127.0.0.1:5566", "lbagent's admin port (its port must be free or lbagent's)")
	cmd.Flags().StringVar(&o.HBAFile, "pg-hba", "", "the primary's serverconf pg_hba.conf (default: the instance's hba_file)")
	cmd.Flags().StringVar(&o.ReplicationRole, "replication-role", "slavenode", "group role of the replication users in pg_hba.conf")
	cmd.Flags().StringVar(&o.PrimaryAgent, "primary-agent", "", "the primary lbagent's health port host:port for the clock check (default: [sync] primary's host, this node's health check port)")
	cmd.Flags().BoolVar(&debug, "debug", false, "also show the checks that were skipped")
	return cmd
}

func count(fs []doctor.Finding, sev doctor.Severity) int {
	n := 0
	for _, f := range fs {
		if f.Severity == sev {
			n++
		}
	}
	return n
}
