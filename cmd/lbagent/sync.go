package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/internal/sighup"
	"github.com/xroad-lb/lbkit/internal/units"
	"github.com/xroad-lb/lbkit/sync/confsync"
)

// Exit codes of "lbagent sync --once".
const (
	syncExitFailed = 1 // the pass failed; nothing was changed on this node
	syncExitConfig = 2 // bad configuration or flags
	syncExitPaused = 3 // the pause file exists; no pass ran
	// syncExitPartial: the pass committed, but files the primary could not read were
	// skipped (rsync's 23, "partial transfer due to error").
	syncExitPartial = 23
)

func newSyncCmd() *cobra.Command {
	var (
		xroadDir                      string
		once, printSystemd, checkOnly bool
		printLogrotate                bool
		logs                          logFlags
		cfg                           confsync.Config
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Replicate /etc/xroad from the primary over SSH (secondaries)",
		Long: `lbagent sync copies the primary's /etc/xroad/ to this secondary over SSH and SFTP, the
job the X-Road load-balancer guide gives to "rsync -e ssh" and a systemd timer.

Without --once it keeps one SSH connection open. Where lbagent is installed on the primary
too, it starts "lbagent sync serve" there over that connection and runs a pass as soon as
a change is noticed (inotify), otherwise every --full-scan-interval; without it, it runs a
pass every --interval (1 s), so a change reaches this node in about a second. "lbagent run" runs the same
worker on secondaries; run this command instead only where the daemon does not run.

Each pass lists the primary's tree (between full listings every --full-scan-interval,
only the directories whose time moved), compares size, modification time, permissions (and
owner and group, by name, when running as root) with this node's, downloads what changed
into a staging directory beside the target, and only when every file has arrived writes an
intent journal to --state-dir, renames them into place and deletes what the primary no
longer has. A pass that fails changes nothing; a pass interrupted by a crash is completed
by the next one before it reads the tree. Files the primary cannot read are skipped and
reported; the rest is applied.

Settings come from the [sync] section of <xroad-dir>/conf.d/lbagent.ini, then of
<xroad-dir>/conf.d/node.ini; every flag below overrides its key (see docs/sync.md).

SIGHUP is logged and ignored: the settings are read at start only, so apply a change with a
restart (systemctl restart lbagent-sync); a pass is never cut short by it.

With --once it prints one line, "applied N changes from PRIMARY:SOURCE (...)" or "in sync
with PRIMARY:SOURCE: N entries, no changes (...)", or the error once.
Exit codes with --once: 0 the pass succeeded, 1 it failed (nothing was changed),
2 bad configuration or flags, 3 paused (the pause file exists), 23 applied, but files the primary
could not read were skipped (as rsync).`,
		Example: `  lbagent sync --once --primary ss1.example.org
  lbagent sync --once --primary 10.0.0.1 --accept-new-host-key   # record the host key once
  lbagent sync --print-systemd > /etc/systemd/system/lbagent-sync.service
  lbagent sync --print-logrotate > /etc/logrotate.d/lbagent-sync`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printSystemd {
				bin, err := os.Executable()
				if err != nil {
					bin = "/usr/bin/lbagent"
				}
				fmt.Fprint(cmd.OutOrStdout(), confsync.SystemdUnit(bin))
				return nil
			}
			if printLogrotate {
				fmt.Fprint(cmd.OutOrStdout(), confsync.LogrotateSnippet(cfg.LogFile))
				return nil
			}
			file, err := confsync.LoadConfig(xroadDir)
			if err != nil {
				return &exitError{code: syncExitConfig, err: err}
			}
			applySyncFlags(cmd, &file, cfg)
			if err := file.Validate(); err != nil {
				return &exitError{code: syncExitConfig, err: err}
			}
			if checkOnly {
				fmt.Fprintf(cmd.OutOrStdout(), "sync configuration OK: %s@%s:%s -> %s\n", file.User, file.Primary, file.Source, file.Target)
				return nil
			}
			log, err := logs.logger()
			if err != nil {
				return &exitError{code: syncExitConfig, err: err}
			}
			w, err := confsync.NewWorker(file)
			if err != nil {
				return &exitError{code: syncExitConfig, err: err}
			}
			defer w.Close()
			w.Report = syncReporter(log, file)
			if once {
				w.Report = onceReporter(w.Report)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !once {
				defer sighup.Ignore(ctx, log, syncHUPMessage)()
				log.Info().Str("primary", file.Primary).Str("target", file.Target).Stringer("interval", file.Interval).Msg("config sync started")
				return w.Run(ctx)
			}
			res, err := w.Once(ctx)
			if err != nil {
				if errors.Is(err, confsync.ErrPaused) {
					return &exitError{code: syncExitPaused, err: err}
				}
				return &exitError{code: syncExitFailed, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), onceSummary(res, file))
			if n := len(res.Skipped); n > 0 {
				return &exitError{code: syncExitPartial, err: fmt.Errorf("some files were not transferred: %d skipped (first %q: %s)", n, res.Skipped[0].Path, res.Skipped[0].Reason)}
			}
			return nil
		},
	}
	def := confsync.DefaultConfig()
	f := cmd.Flags()
	f.StringVar(&xroadDir, "xroad-dir", "/etc/xroad", "X-Road configuration directory holding conf.d/lbagent.ini and conf.d/node.ini")
	f.BoolVar(&once, "once", false, "run one pass and exit; the exit code tells the outcome")
	f.BoolVar(&printSystemd, "print-systemd", false, "print the systemd unit lbagent-sync.service for the continuous sync, then exit")
	f.BoolVar(&printLogrotate, "print-logrotate", false, "print the logrotate configuration for --log-file, then exit")
	f.BoolVar(&checkOnly, "check-config", false, "validate the configuration and flags, then exit")
	f.StringVar(&cfg.Primary, "primary", "", "primary node's sshd as HOST[:PORT] (port 22 by default)  [primary]")
	f.StringVar(&cfg.User, "user", def.User, "login user on the primary  [user]")
	f.StringVar(&cfg.Identity, "identity", "", "private key file (default: the first of /var/lib/xroad/.ssh/id_{ed25519,ecdsa,rsa})  [identity]")
	f.StringVar(&cfg.KnownHosts, "known-hosts", def.KnownHosts, "known_hosts file that must list the primary's host key  [known-hosts]")
	f.BoolVar(&cfg.AcceptNewHostKey, "accept-new-host-key", false, "trust on first use: record an unknown host key in --known-hosts (a changed key is always refused)  [accept-new-host-key]")
	f.StringVar(&cfg.Source, "source", def.Source, "directory on the primary  [source]")
	f.StringVar(&cfg.Target, "target", def.Target, "directory on this node (never /)  [target]")
	f.StringArrayVar(&cfg.Excludes, "exclude", nil, "rsync-style exclude PATTERN, repeatable; replaces the defaults ("+fmt.Sprint(confsync.DefaultExcludes)+") when given  [exclude]")
	f.StringVar(&cfg.PauseFile, "pause-file", def.PauseFile, "no pass runs while this file exists  [pause-file]")
	f.StringVar(&cfg.LogFile, "log-file", def.LogFile, "rsync --log-file style record of the passes (\"\" = none)  [log-file]")
	f.DurationVar(&cfg.Interval, "interval", def.Interval, "time between passes while polling; with change notices from the primary a pass runs on each notice, otherwise every --full-scan-interval  [interval]")
	f.DurationVar(&cfg.ConnectTimeout, "connect-timeout", def.ConnectTimeout, "TCP connect and SSH handshake timeout  [connect-timeout]")
	f.DurationVar(&cfg.IOTimeout, "io-timeout", def.IOTimeout, "a pass fails when no data arrives for this long  [io-timeout]")
	f.DurationVar(&cfg.MaxAgeWarning, "max-age-warning", def.MaxAgeWarning, "status warns when the last success is older  [max-age-warning]")
	f.IntVar(&cfg.Parallel, "parallel", def.Parallel, "files and directories fetched at the same time  [parallel]")
	f.DurationVar(&cfg.FullScan, "full-scan-interval", def.FullScan, "time between full listings of the primary; between them only changed directories are listed, so a file rewritten in place (not renamed) is seen within this  [full-scan-interval]")
	f.StringVar(&cfg.ServeCommand, "serve-command", def.ServeCommand, "run on the primary over the SSH connection for change notices (inotify), so a change arrives at once; \"\" or a primary without lbagent: poll every --interval  [serve-command]")
	f.StringVar(&cfg.StateDir, "state-dir", def.StateDir, "lbagent's own files (lock, intent journal, racy set), outside the target; systemd's StateDirectory  [state-dir]")
	f.Float64Var(&cfg.SpaceReserve, "space-reserve", def.SpaceReserve, "percent of the target's filesystem a pass never fills: a pass that would is refused before downloading  [space-reserve]")
	f.BoolVar(&cfg.PreserveSpecialBits, "preserve-special-bits", false, "keep setuid, setgid and sticky bits (dropped by default, as the guide's rsync as xroad)  [preserve-special-bits]")
	f.BoolVar(&cfg.NumericOwners, "numeric-owners", false, "as root, keep owners by number (default: by the primary's user and group names)  [numeric-owners]")
	logs.register(cmd)
	cmd.AddCommand(newSyncServeCmd(), newSyncPauseCmd("pause"), newSyncPauseCmd("resume"))
	return cmd
}

// newSyncPauseCmd is "lbagent sync pause|resume": the guide's 7.2.1 "touch
// /var/tmp/xroad/sync-disabled" and 7.2.3 "rm /var/tmp/xroad/sync-disabled", on the pause file
// of the [sync] settings.
func newSyncPauseCmd(verb string) *cobra.Command {
	var xroadDir, pauseFile string
	short := map[string]string{
		"pause":  "Pause the config sync on this secondary: create the pause file (rolling upgrade, guide 7.2.1)",
		"resume": "Resume the config sync on this secondary: remove the pause file (guide 7.2.3); then lbagent sync --once",
	}[verb]
	cmd := &cobra.Command{
		Use:   verb,
		Short: short,
		Long: short + `.
The pause file is [sync] pause-file of <xroad-dir>/conf.d/lbagent.ini or node.ini (default
` + confsync.DefaultPauseFile + `). Running it twice is fine: it says what it found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file := pauseFile
			if !cmd.Flags().Changed("pause-file") {
				c, err := confsync.LoadConfig(xroadDir)
				if err != nil {
					return &exitError{code: syncExitConfig, err: err}
				}
				file = c.PauseFile
			}
			if file == "" {
				return &exitError{code: syncExitConfig, err: errors.New("no pause file configured ([sync] pause-file is empty)")}
			}
			out := cmd.OutOrStdout()
			if verb == "pause" {
				_, err := os.Lstat(file)
				switch {
				case err == nil:
					fmt.Fprintf(out, "config sync already paused (%s exists)\n", file)
					return nil
				case !errors.Is(err, os.ErrNotExist):
					return err
				}
				f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
				if err != nil {
					return fmt.Errorf("pause config sync: %w", err)
				}
				if err := f.Close(); err != nil {
					return err
				}
				fmt.Fprintf(out, "config sync paused (%s created)\n", file)
				return nil
			}
			switch err := os.Remove(file); {
			case errors.Is(err, os.ErrNotExist):
				fmt.Fprintf(out, "config sync was not paused (no %s)\n", file)
			case err != nil:
				return fmt.Errorf("resume config sync: %w", err)
			default:
				fmt.Fprintf(out, "config sync resumed (%s removed)\n", file)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&xroadDir, "xroad-dir", "/etc/xroad", "X-Road configuration directory holding conf.d/lbagent.ini and conf.d/node.ini")
	cmd.Flags().StringVar(&pauseFile, "pause-file", "", "the pause file (default: [sync] pause-file, "+confsync.DefaultPauseFile+")")
	return cmd
}

func newSyncServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve SOURCE [EXCLUDE...]",
		Short: "On the primary: write change notices for SOURCE (started by the secondaries over SSH)",
		Long: `lbagent sync serve watches SOURCE on the primary with inotify and writes one line per
changed path to stdout, so a secondary's "lbagent sync" (which starts it over its SSH
connection, as serve-command) runs a pass at once instead of at its next interval. It reads
no file and writes nothing; it ends when stdin or stdout closes (the SSH session ends).
EXCLUDE patterns are the secondary's excludes (no notices for them).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() { _, _ = io.Copy(io.Discard, cmd.InOrStdin()); cancel() }()
			var ex []string
			if len(args) > 1 {
				ex = args[1:]
			}
			return confsync.Serve(ctx, args[0], ex, cmd.OutOrStdout())
		},
	}
}

// applySyncFlags copies every flag the user set over the file's configuration.
func applySyncFlags(cmd *cobra.Command, file *confsync.Config, flags confsync.Config) {
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	set("primary", func() { file.Primary = flags.Primary })
	set("user", func() { file.User = flags.User })
	set("identity", func() { file.Identity = flags.Identity })
	set("known-hosts", func() { file.KnownHosts = flags.KnownHosts })
	set("accept-new-host-key", func() { file.AcceptNewHostKey = flags.AcceptNewHostKey })
	set("source", func() { file.Source = flags.Source })
	set("target", func() { file.Target = flags.Target })
	set("exclude", func() { file.Excludes = flags.Excludes })
	set("pause-file", func() { file.PauseFile = flags.PauseFile })
	set("log-file", func() { file.LogFile = flags.LogFile })
	set("interval", func() { file.Interval = flags.Interval })
	set("connect-timeout", func() { file.ConnectTimeout = flags.ConnectTimeout })
	set("io-timeout", func() { file.IOTimeout = flags.IOTimeout })
	set("max-age-warning", func() { file.MaxAgeWarning = flags.MaxAgeWarning })
	set("parallel", func() { file.Parallel = flags.Parallel })
	set("full-scan-interval", func() { file.FullScan = flags.FullScan })
	set("state-dir", func() { file.StateDir = flags.StateDir })
	set("serve-command", func() { file.ServeCommand = flags.ServeCommand })
	set("space-reserve", func() { file.SpaceReserve = flags.SpaceReserve })
	set("preserve-special-bits", func() { file.PreserveSpecialBits = flags.PreserveSpecialBits })
	set("numeric-owners", func() { file.NumericOwners = flags.NumericOwners })
}

// syncHUPMessage is logged for a SIGHUP to the continuous sync, which keeps running.
const syncHUPMessage = "SIGHUP ignored: lbagent sync reads its settings only at start; apply changes with systemctl restart lbagent-sync"

// onceReporter keeps report's warnings for "sync --once" but not what the command prints
// itself: the pass (its summary line) and a failure or pause (the error, once).
func onceReporter(report func(confsync.Event)) func(confsync.Event) {
	return func(e confsync.Event) {
		switch e.Kind {
		case confsync.EventPass, confsync.EventIdle, confsync.EventError, confsync.EventPaused, confsync.EventResumed:
			return
		}
		report(e)
	}
}

// onceSummary is the one line "sync --once" prints after a pass.
func onceSummary(res confsync.Result, cfg confsync.Config) string {
	from := cfg.Primary + ":" + cfg.Source
	took := res.Duration.Round(time.Millisecond)
	if res.Changes == 0 {
		return fmt.Sprintf("in sync with %s: %d entries, no changes (%s)", from, res.Files, took)
	}
	changes := fmt.Sprintf("%d changes", res.Changes)
	if res.Changes == 1 {
		changes = "1 change"
	}
	return fmt.Sprintf("applied %s from %s (%s received, %s)", changes, from, units.Bytes(res.Received), took)
}

// syncReporter logs the worker's events; idle passes only at debug level.
func syncReporter(log zerologLogger, cfg confsync.Config) func(confsync.Event) {
	return func(e confsync.Event) {
		switch e.Kind {
		case confsync.EventPass:
			ev := log.Info()
			if len(e.Result.Refused) > 0 {
				ev = log.Warn().Int("refused", len(e.Result.Refused))
			}
			if len(e.Result.Skipped) > 0 {
				names := make([]string, 0, len(e.Result.Skipped))
				for _, s := range e.Result.Skipped {
					names = append(names, s.Path)
				}
				ev = log.Warn().Strs("skipped", names)
			}
			if e.Result.Recovered {
				ev = ev.Bool("recovered_interrupted_commit", true)
			}
			ev.Str("component", "sync").Int("changes", e.Result.Changes).Int64("received_bytes", e.Result.Received).
				Stringer("duration", e.Result.Duration).Msg("config sync pass applied")
		case confsync.EventIdle:
			log.Debug().Str("component", "sync").Stringer("duration", e.Result.Duration).Int("files", e.Result.Files).Msg("config sync pass: no changes")
		case confsync.EventError:
			log.Warn().Str("component", "sync").Err(e.Err).Str("primary", cfg.Primary).Msg("config sync pass failed; nothing changed")
		case confsync.EventPaused:
			log.Warn().Str("component", "sync").Str("pause_file", cfg.PauseFile).Msg("config sync paused")
		case confsync.EventResumed:
			log.Info().Str("component", "sync").Str("pause_file", cfg.PauseFile).Msg("config sync resumed")
		case confsync.EventLog:
			log.Warn().Str("component", "sync").Err(e.Err).Msg("config sync log not written")
		}
	}
}
