package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"runtime"
	"slices"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/agent"
	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/connlimit"
	"github.com/xroad-lb/lbkit/agent/push"
	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/sync/confsync"
)

func newRunCmd() *cobra.Command {
	var f agent.Flags
	var lf logFlags
	var checkConfig bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent: health port, admin port, checks (and on secondaries the sync and replication watch)",
		Long: `Run the agent daemon.

It reads X-Road's own files under --xroad-dir (default /etc/xroad):
  conf.d/*.ini, conf.d/local.ini   [proxy] health-check-interface, health-check-port (0 = disabled),
                                   memory-usage-threshold (percent; enables the memory check)
  conf.d/node.ini                  [node] type = master|slave (primary/secondary; unset = standalone)
  db.properties                    serverconf.hibernate.connection.url/username/password
  globalconf/                      instance-identifier, private-params.xml, shared-params.xml (+ .metadata)
  signer/keyconf.xml               the authentication key and certificate
and the OCSP cache under --ocsp-cache-dir (default /var/cache/xroad).

lbagent's own settings live in conf.d/lbagent.ini (cluster-wide) and conf.d/node.ini
(node-specific, wins), section [lbagent]:
  check-timeout = 5s             a check that takes longer fails ("timed out for: <check>")
  success-ttl = 2s               how long a pass is kept before the check runs again
  failure-ttl = 30s              how long a failure is kept before the check runs again
  tcp-checks = proxy=127.0.0.1:5500, signer=127.0.0.1:5558   local ports that must accept connections
  maintenance-state-file = /var/lib/lbagent/maintenance      keep maintenance mode across restarts (off by default)
  max-procs = 1                  CPUs the agent uses at once (0 = all; the GOMAXPROCS variable wins)
  max-connections = 4096         connections at once on the health and agent-check ports (default: from RLIMIT_NOFILE)
  max-connections-per-ip = 16    from one address that is not a balancer ([agent-check] balancers)
  max-rate-per-ip = 100          new connections and keep-alive requests a second from such an address (0 = no limit)
  read-timeout = 2s              to send one request; idle-timeout = 10s between keep-alive requests
  status-token = <16+ chars>     "Authorization: Bearer <token>" shows the full /status on the health port
Other sections: [agent-check] and [push] (docs/haproxy.md), [replication] (secondaries,
docs/replication.md), [sync] (secondaries, docs/sync.md).
X-Road's files are read by X-Road's rules; lbagent.ini and node.ini by ours: ";" or "#" starts a
comment (at the start of a value or after whitespace), names are case-insensitive, unknown
sections and keys are errors with a suggestion, values are range-checked (docs/settings.md).

The health port answers any method and path as X-Road does: 200 with an empty body, 500 with the
first failing check's message, 503 "Health check interface is in maintenance mode." in maintenance.
Reserved paths: /status (application/health+json, every check; causes and components' details
only with the token), /metrics (Prometheus), /lb (the agent-check line).
The admin port (127.0.0.1:5566, loopback peers only) takes GET /maintenance?targetState=true|false
and GET /status (the full document). Limits and threat model: docs/security.md.

Under systemd (Type=notify) it reports READY once its ports listen. SIGHUP (systemctl reload
lbagent) reads the files again: check-timeout, success-ttl, failure-ttl and db.properties apply
from each check's next run; maintenance mode and the agent-check state are kept; a
configuration that does not load is refused with a log line and the running one kept.
Listen addresses, connection caps and rates, the public ports' timeouts, the set of checks,
the role, max-procs, status-token, maintenance-state-file and the sections [agent-check],
[push], [replication] and [sync] take effect at the next restart (systemctl restart lbagent);
a reload logs which changed settings wait for it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGHUP re-reads the configuration (caught from the start: its default ends the process).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			if _, err := lf.logger(); err != nil { // bad log flags first
				return err
			}
			// Every descriptor the hard limit allows: the default connection caps are sized
			// from it (docs/security.md).
			_, _ = connlimit.RaiseNoFile()
			cfg, err := agent.LoadConfig(f)
			if err != nil {
				return err
			}
			// Every log line passes the redactor of the serverconf password.
			log, err := lf.loggerTo(cfg.Redactor.Writer(os.Stderr))
			if err != nil {
				return err
			}
			// The verdict store first (New), then every part built for it: every part's
			// settings are read here, so --check-config validates them all.
			a, err := agent.New(cfg, log)
			if err != nil {
				return err
			}
			parts, err := buildComponents(a, log)
			if err != nil {
				return err
			}
			if checkConfig {
				// Errors exit non-zero (above); warnings are printed and the exit is 0.
				sum, err := summarize(cfg, parts)
				if err != nil {
					return err
				}
				sum.print(cmd.OutOrStdout(), cfg.Role)
				return nil
			}
			// One CPU by default: the agent shares the node with X-Road's proxy, and one core
			// answers well over 100,000 probes a second (BENCHMARKS.md); fewer cores also
			// mean fewer cross-core wake-ups per probe. GOMAXPROCS in the environment wins.
			if os.Getenv("GOMAXPROCS") == "" && cfg.MaxProcs > 0 {
				runtime.GOMAXPROCS(cfg.MaxProcs)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := a.Listen(); err != nil {
				return err
			}
			// systemd (Type=notify) learns the ports listen; without NOTIFY_SOCKET a no-op.
			if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
				log.Warn().Err(err).Msg("sd_notify READY")
			}
			running, err := partSettings(cfg) // as built above, for the reload to compare
			if err != nil {
				return err
			}
			go reloadOnHUP(ctx, hup, f, a, running, log)
			return a.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.XRoadDir, "xroad-dir", "/etc/xroad", "X-Road configuration directory (replaces /etc/xroad for every file)")
	fl.StringVar(&f.OCSPCacheDir, "ocsp-cache-dir", "/var/cache/xroad", "directory of X-Road's cached OCSP responses")
	fl.StringVar(&f.AdminListen, "admin-listen", "127.0.0.1:5566", "admin port address (maintenance mode, full /status); answers loopback peers only (127.0.0.0/8, ::1)")
	fl.StringVar(&f.HealthListen, "health-listen", "", "health port address, overriding local.ini's [proxy] health-check-interface:health-check-port")
	fl.StringVar(&f.MaintenanceStateFile, "maintenance-state-file", "", "persist maintenance mode in this file (default: in memory, off after a restart, as X-Road)")
	fl.BoolVar(&checkConfig, "check-config", false, "read and validate every file (errors name file and line; exit 1), print every port, peer and the primary, and warnings; then exit")
	lf.register(cmd)
	return cmd
}

// reloadOnHUP re-reads the configuration at each SIGHUP. A configuration that does not load
// (or whose parts' settings do not) is refused with one log line and the running one is
// kept; maintenance mode and the agent-check state are never touched.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, f agent.Flags, a *agent.Agent, running []partSetting, log zerologLogger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		_, _ = daemon.SdNotify(false, daemon.SdNotifyReloading)
		cfg, err := agent.LoadConfig(f)
		var parts []partSetting
		if err == nil {
			parts, err = partSettings(cfg)
		}
		if err != nil {
			log.Error().Err(err).Msg("configuration reload refused: keeping the running configuration")
		} else {
			restart := append(a.Reload(cfg), changedParts(running, parts)...)
			var timing []string // what the checks run with now: name=timeout/success-ttl/failure-ttl
			for _, c := range a.Checks() {
				timing = append(timing, fmt.Sprintf("%s=%s/%s/%s", c.Name, c.Timeout, c.PassTTL, c.FailTTL))
			}
			log.Info().Strs("checks", timing).Str("serverconf", cfg.ServerConf.String()).Msg("configuration reloaded")
			if len(restart) > 0 {
				log.Warn().Strs("settings", restart).Msg("changed settings take effect at the next restart")
			}
		}
		_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	}
}

// partSettings reads the settings of the daemon's parts (agent-check, push, replication,
// sync) with their own loaders, without building them, by section. They take effect at a
// restart only.
func partSettings(cfg agent.Config) ([]partSetting, error) {
	ac, err := agentcheck.LoadConfig(cfg.Settings, cfg.Health)
	if err != nil {
		return nil, err
	}
	ac.Balancers = nil // agent.Reload names them on their own
	pc, err := push.LoadConfig(cfg.Settings)
	if err != nil {
		return nil, err
	}
	parts := []partSetting{{"[agent-check]", ac}, {"[push]", pc}}
	if cfg.Role != xroad.Secondary {
		return parts, nil
	}
	dc, err := db.LoadConfig(cfg.XRoadDir)
	if err != nil {
		return nil, err
	}
	sc, err := confsync.LoadConfig(cfg.XRoadDir)
	if err != nil {
		return nil, err
	}
	return append(parts, partSetting{"[replication]", dc}, partSetting{"[sync]", sc}), nil
}

// partSetting is one part's settings as read by its loader.
type partSetting struct {
	section string
	value   any
}

// changedParts names the sections whose settings differ between old and new.
func changedParts(old, new []partSetting) []string {
	var out []string
	for _, n := range new {
		i := slices.IndexFunc(old, func(o partSetting) bool { return o.section == n.section })
		if i < 0 || !reflect.DeepEqual(old[i].value, n.value) {
			out = append(out, n.section)
		}
	}
	return out
}
