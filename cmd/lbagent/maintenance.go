package main

import (
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
		Use:   "maintenance on|off",
		Short: "Switch this node's maintenance mode through the local admin port",
		Long: `Switch maintenance mode through the admin port, exactly as
  curl "http://127.0.0.1:5566/maintenance?targetState=true"
does. In maintenance the health port answers 503 "Health check interface is in maintenance mode."
so the balancer stops sending new connections; open ones continue. Prints X-Road's answer,
e.g. "Maintenance mode set: false => true".`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"on", "off"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var target string
			switch strings.ToLower(args[0]) {
			case "on", "true":
				target = "true"
			case "off", "false":
				target = "false"
			default:
				return fmt.Errorf("maintenance %q: want on or off", args[0])
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
