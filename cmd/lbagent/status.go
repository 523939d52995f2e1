package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/internal/units"
	"github.com/xroad-lb/lbkit/lbadapters"
)

// Exit codes of lbagent status, for monitoring and scripts.
const (
	statusHealthy     = 0
	statusFailing     = 1
	statusNotRunning  = 3
	statusMaintenance = 4 // not 2: that is every command's usage error
)

// statusDoc is the admin port's /status with the components lbagent status shows.
type statusDoc struct {
	healthport.Status
	Components lbadapters.AgentComponents `json:"components"`
}

func newStatusCmd() *cobra.Command {
	var admin, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "This node at a glance: verdict, each check, maintenance, role, replication lag, sync age",
		Long: `status reads the running agent's full /status from its admin port
(http://127.0.0.1:5566/status) and prints the verdict, the role, maintenance mode, every check
with its status, age and message, and on secondaries the serverconf replication lag and the
time since the last config sync. -o json prints the /status document itself.

Exit codes:
  0  healthy (warnings, e.g. a secondary's sync, included)
  1  a check fails: the balancer is told 500
  2  bad usage (flags, arguments)
  3  the agent is not running (the admin port does not answer with a status document)
  4  maintenance mode: the balancer is told 503`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError(fmt.Errorf("-o %q: want table or json", output))
			}
			body, err := fetchStatus(admin)
			if err != nil {
				return &exitError{code: statusNotRunning, err: fmt.Errorf("not running: %w", err)}
			}
			var doc statusDoc
			if err := json.Unmarshal(body, &doc); err != nil || doc.State == "" {
				return &exitError{code: statusNotRunning, err: fmt.Errorf("not running: %s did not answer with a status document", admin)}
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				var out bytes.Buffer
				if err := json.Indent(&out, body, "", "  "); err != nil {
					return err
				}
				fmt.Fprintln(w, strings.TrimSpace(out.String()))
			} else {
				printNodeStatus(w, doc)
			}
			switch string(doc.State) {
			case lbadapters.AgentHealthy:
				return nil
			case lbadapters.AgentMaintenance:
				return &exitError{code: statusMaintenance, err: errors.New("maintenance mode: the balancer is told 503")}
			default:
				return &exitError{code: statusFailing, err: fmt.Errorf("%s: %s", doc.State, doc.Output)}
			}
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "127.0.0.1:5566", "the agent's admin port")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json (the /status document)")
	return cmd
}

func fetchStatus(admin string) ([]byte, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get("http://" + admin + "/status")
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // "dial tcp 127.0.0.1:5566: connect: connection refused"
		}
		return nil, fmt.Errorf("admin port %s: %w", admin, err)
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// replicationText is the replication line: "caught up", "3.0MB behind, last replayed
// transaction 4m2s ago", "paused, 1.5kB behind", with ", not streaming" when the standby has
// no WAL receiver; sizes and ages in lag-limit's units, as lbagent db status.
func replicationText(r *lbadapters.ReplicationStatus) string {
	if r.Error != "" {
		return "? (" + r.Error + ")"
	}
	lag := "caught up"
	if r.LagBytes > 0 {
		lag = units.Bytes(r.LagBytes) + " behind"
		if r.LagSeconds >= 1 {
			lag += ", last replayed transaction " + units.Seconds(r.LagSeconds) + " ago"
		}
	}
	if r.Paused {
		lag = "paused, " + lag
	}
	if !r.Streaming {
		lag += ", not streaming"
	}
	return lag
}

func printNodeStatus(w io.Writer, d statusDoc) {
	verdict := string(d.State)
	if d.Output != "" && verdict != lbadapters.AgentHealthy {
		verdict += ": " + d.Output
	}
	fmt.Fprintf(w, "verdict      %s\n", verdict)
	fmt.Fprintf(w, "role         %s\n", d.Role)
	fmt.Fprintf(w, "maintenance  %s\n", onOff(d.Maintenance))
	if r := d.Components.Replication; r != nil {
		fmt.Fprintf(w, "replication  %s\n", replicationText(r))
	}
	if s := d.Components.Sync; s != nil {
		age := "never synced"
		if s.AgeSeconds != nil {
			age = fmt.Sprintf("last success %s ago", (time.Duration(*s.AgeSeconds) * time.Second).String())
		}
		if s.Paused {
			age += ", paused (/var/tmp/xroad/sync-disabled)"
		}
		if s.LastError != "" {
			age += ", last error: " + s.LastError
		}
		fmt.Fprintf(w, "sync         %s\n", age)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tAGE\tMESSAGE")
	for _, name := range d.Order {
		for _, c := range d.Checks[name] {
			msg := c.Output
			if c.Detail != "" {
				msg += " (" + c.Detail + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\n", name, c.Status, c.AgeSeconds, msg)
		}
	}
	tw.Flush()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
