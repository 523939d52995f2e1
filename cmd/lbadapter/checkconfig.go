package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/lbadapters"
)

func (c *cli) checkConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-config",
		Short: "Read and validate the cluster config, print every balancer, node, port and the primary, and warnings",
		Long: `Read and validate the cluster config file without contacting any balancer or node.

Errors name the file and line (unknown sections and keys get a suggestion:
unknown key "backnd" in [balancer]; did you mean "backend"?) and exit 2. A config that loads
is printed: every balancer with what it drives, every node with its address, role, server
name and agent ports, and the primary; then warnings (no primary, two primaries, ...).
The rules of the file: docs/settings.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := lbadapters.Load(c.configPath)
			if err != nil {
				return usageError{err}
			}
			printClusterSummary(c.stdout, cfg)
			return nil
		},
	}
}

// clusterWarnings are settings that load but are probably not what the operator wants.
func clusterWarnings(cfg *lbadapters.Config) []string {
	var w, primaries []string
	for _, n := range cfg.Nodes {
		if n.Role == lbadapters.RolePrimary {
			primaries = append(primaries, n.Name)
		}
		if n.HealthPort == n.AgentPort {
			w = append(w, fmt.Sprintf("[node %q]: health-port and agent-port are both %d", n.Name, n.HealthPort))
		}
	}
	switch {
	case len(primaries) == 0 && len(cfg.Nodes) > 1:
		w = append(w, "no node has role = primary: the cluster's configuration has no source")
	case len(primaries) > 1:
		w = append(w, fmt.Sprintf("%d nodes have role = primary (%s): a cluster has one", len(primaries), strings.Join(primaries, ", ")))
	}
	return w
}

func printClusterSummary(out io.Writer, cfg *lbadapters.Config) {
	warnings := clusterWarnings(cfg)
	fmt.Fprintf(out, "configuration OK: %s: %d balancer(s), %d node(s), %d warning(s)\n",
		cfg.Path, len(cfg.Balancers), len(cfg.Nodes), len(warnings))
	for _, b := range cfg.Balancers {
		var what string
		switch b.Type {
		case lbadapters.TypeHAProxy:
			what = fmt.Sprintf("runtime API %s, backend %s", b.RuntimeAPI, b.Backend)
		case lbadapters.TypeAWS:
			what = "target group " + b.TargetGroupARN
		case lbadapters.TypeNginx:
			what = fmt.Sprintf("%s, servers file %s, port %d", b.NginxConf, b.ServersFile, b.Port)
		}
		fmt.Fprintf(out, "  balancer %s: %s, %s, call timeout %s\n", b.Name, b.Type, what, b.CallTimeout)
	}
	for _, n := range cfg.Nodes {
		fmt.Fprintf(out, "  node %s: %s, %s, server %s, health port %d, agent port %d\n",
			n.Name, n.Address, n.Role, n.Server, n.HealthPort, n.AgentPort)
	}
	for _, w := range warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
}
