package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newMaintenanceCmd() *cobra.Command {
	var admin string
	cmd := &cobra.Command{
		Use:   "maintenance on|off|status",
		Short: "Switch this node's maintenance mode through the local admin port, or show it",
		Long: `Switch maintenance mode through the admin port, exactly as
  curl "http://127.0.0.1:5566/maintenance?targetState=true"
does. In maintenance the health port answers 503 "Health check interface is in maintenance mode."
so the balancer stops sending new connections; open ones continue. Prints X-Road's answer,
e.g. "Maintenance mode set: false => true".

"status" prints "maintenance mode: on" or "maintenance mode: off" (read from the admin port's
/status) and exits 0; 3 when the agent is not running. A missing or unknown argument exits 2.`,
		Example: "  lbagent maintenance on\n  lbagent maintenance status\n  lbagent maintenance off",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: 2, err: errors.New("maintenance: " + maintenanceUsage)}
			}
			return nil
		},
		ValidArgs: []string{"on", "off", "status"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var target string
			switch strings.ToLower(args[0]) {
			case "on", "true":
				target = "true"
			case "off", "false":
				target = "false"
			case "status":
				return maintenanceStatus(cmd.OutOrStdout(), admin)
			default:
				return &exitError{code: 2, err: fmt.Errorf("maintenance %q: %s", args[0], maintenanceUsage)}
			}
			client := &http.Client{Timeout: 5 * time.Second}
			resp, err := client.Get("http://" + admin + "/maintenance?targetState=" + target)
			if err != nil {
				return fmt.Errorf("admin port %s: %w (is lbagent running?)", admin, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("admin port %s: HTTP %d", admin, resp.StatusCode)
			}
			fmt.Fprint(cmd.OutOrStdout(), string(body))
			if !strings.HasPrefix(string(body), "Maintenance mode set:") {
				return &exitError{code: 2, err: fmt.Errorf("not set: %s", strings.TrimSpace(string(body)))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "127.0.0.1:5566", "the agent's admin port")
	return cmd
}

const maintenanceUsage = "want on, off or status (e.g. lbagent maintenance on)"

// maintenanceStatus prints the running agent's maintenance mode.
func maintenanceStatus(w io.Writer, admin string) error {
	body, err := fetchStatus(admin)
	if err != nil {
		return &exitError{code: statusNotRunning, err: fmt.Errorf("not running: %w", err)}
	}
	var doc statusDoc
	if err := json.Unmarshal(body, &doc); err != nil || doc.State == "" {
		return &exitError{code: statusNotRunning, err: fmt.Errorf("not running: %s did not answer with a status document", admin)}
	}
	fmt.Fprintf(w, "maintenance mode: %s\n", onOff(doc.Maintenance))
	return nil
}
