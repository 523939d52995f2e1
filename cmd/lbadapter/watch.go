package main

import (
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/internal/sighup"
	"github.com/xroad-lb/lbkit/lbadapters/nginxadapter"
	"github.com/xroad-lb/lbkit/nginx/watch"
)

func (c *cli) watchCmd() *cobra.Command {
	var (
		interval   time.Duration
		fall, rise int
		once       bool
		logFormat  string
		source     string
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Keep the nginx balancers' servers files in line with the nodes' agents (active checks for nginx)",
		Long: `watch runs on the nginx host (systemd: deploy/systemd/lbadapter-watch.service). Every
--interval it reads each node's agent line (GET http://ADDRESS:HEALTH-PORT/lb, the line
HAProxy's agent-check reads) and keeps the node's server line in the servers file of every
balancer of type nginx in the cluster config:

  "down ..." or no valid answer     after --fall such polls in a row: the line gets "down",
  (unreachable, timeout, garbage)    marked as the watcher's (# lbkit: down=agent reason: ...)
  "up"                               after --rise such polls in a row the watcher's down is lifted
  "drain" or "maint"                 "down" at once, until the agent says "ready"
  "up N%"                            weight N% of the line's weight (written in hundredths)

It never lifts an operator's drain (lbadapter drain, or a "down" written by hand): that stays
until lbadapter enable. When a servers file changes it is written atomically, checked with
nginx -t -c NGINX-CONF (a refusal puts the old file back and nginx keeps running on it) and
nginx is reloaded gracefully: at most once per interval and nginx, only on a change. Every
change is logged with the agent's words. Balancers of other types are left alone.

--once polls once, applies each agent's answer at once (fall and rise count as 1) and exits:
0 when every servers file could be kept, 1 otherwise.

watch reads the cluster config and its flags only at start: SIGHUP is logged and ignored;
restart it (systemctl restart lbadapter-watch) to apply a change. SIGTERM or Ctrl-C stops
it with exit 0.`,
		Example: "  lbadapter watch\n  lbadapter watch --interval 2s --fall 3 --rise 2\n  lbadapter watch --once",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var log zerolog.Logger
			switch logFormat {
			case "json":
				log = zerolog.New(c.stderr)
			case "console":
				log = zerolog.New(zerolog.ConsoleWriter{Out: c.stderr, TimeFormat: time.RFC3339, NoColor: true})
			default:
				return usageError{fmt.Errorf("--log-format %q: want json or console", logFormat)}
			}
			log = log.With().Timestamp().Logger()
			var src net.IP
			if source != "" {
				if src = net.ParseIP(source); src == nil {
					return usageError{fmt.Errorf("--source %q: want an IP address of this host", source)}
				}
			}
			if interval <= 0 || fall < 1 || rise < 1 {
				return usageError{fmt.Errorf("--interval, --fall and --rise must be positive")}
			}
			cfg, bs, err := c.load(cmd.Context())
			if err != nil {
				return err
			}
			var ups []watch.Upstream
			for _, b := range bs {
				if a, ok := b.Balancer.(*nginxadapter.Adapter); ok {
					ups = append(ups, watch.Upstream{Name: b.Name, Nginx: a.Instance(), File: a.ServersFile(), Port: a.Port()})
				}
			}
			if len(ups) == 0 {
				return usageError{fmt.Errorf("%s has no balancer of type nginx: nothing to watch", c.configPath)}
			}
			failed := false
			o := watch.Options{Interval: interval, Fall: fall, Rise: rise, Source: src, Log: func(e watch.Event) {
				switch {
				case e.Err != nil:
					failed = true
					log.Error().Str("error", e.Err.Error()).Msg(e.String())
				case e.Node != "":
					log.Info().Str("node", e.Node).Str("change", e.Change).Str("agent", e.Reason).Msg(e.String())
				default:
					log.Info().Str("balancer", e.Upstream).Str("change", e.Change).Msg(e.String())
				}
			}}
			if once {
				o.Fall, o.Rise = 1, 1
			}
			w, err := watch.New(cfg.Nodes, ups, o)
			if err != nil {
				return usageError{err}
			}
			if once {
				w.Step(cmd.Context())
				if failed {
					return fmt.Errorf("watch --once: some servers files could not be kept (see above)")
				}
				return nil
			}
			names := make([]string, len(ups))
			for i, u := range ups {
				names[i] = u.Name
			}
			log.Info().Strs("balancers", names).Int("nodes", len(cfg.Nodes)).Stringer("interval", interval).
				Int("fall", fall).Int("rise", rise).Str("config", c.configPath).Msg("watching")
			defer sighup.Ignore(cmd.Context(), log, watchHUPMessage)()
			return w.Run(cmd.Context())
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", watch.DefaultInterval, "time between two polls of every agent")
	cmd.Flags().IntVar(&fall, "fall", watch.DefaultFall, "failed polls in a row (down, unreachable, garbage) before the watcher marks a node down")
	cmd.Flags().IntVar(&rise, "rise", watch.DefaultRise, "good polls in a row before the watcher lifts its own down")
	cmd.Flags().BoolVar(&once, "once", false, "poll once, apply every answer at once, exit")
	cmd.Flags().StringVar(&source, "source", "", "local IP address to poll the agents from (default: the system's choice)")
	cmd.Flags().StringVar(&logFormat, "log-format", "console", "log format: console (one line per change) or json")
	return cmd
}

// watchHUPMessage is logged for a SIGHUP to watch, which keeps running.
const watchHUPMessage = "SIGHUP ignored: lbadapter watch reads the cluster config only at start; apply changes with systemctl restart lbadapter-watch"
