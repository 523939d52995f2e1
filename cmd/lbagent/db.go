package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/internal/units"
)

// dbFlags are the connection flags of the db commands.
type dbFlags struct {
	xroadDir               string
	host, user, dbname     string
	port                   int
	ca, cert, key, sslmode string
	timeout                time.Duration
}

func (f *dbFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.xroadDir, "xroad-dir", "/etc/xroad", "X-Road configuration directory (db.properties, postgresql/ TLS files)")
	fl.StringVar(&f.host, "host", "", "database host or unix socket directory (default: PGHOST, db.properties, libpq's socket)")
	fl.IntVar(&f.port, "port", 0, "database port (default: PGPORT, db.properties, 5433)")
	fl.StringVar(&f.user, "user", "", "database user (default: PGUSER, db.properties' serverconf user for read-only commands, the OS user)")
	fl.StringVar(&f.dbname, "dbname", "", "database (default: PGDATABASE, postgres)")
	fl.StringVar(&f.ca, "ca", "", "CA certificate (default <xroad-dir>/postgresql/ca.crt)")
	fl.StringVar(&f.cert, "cert", "", "this node's certificate (default <xroad-dir>/postgresql/server.crt)")
	fl.StringVar(&f.key, "key", "", "this node's private key (default <xroad-dir>/postgresql/server.key)")
	fl.StringVar(&f.sslmode, "sslmode", "", "libpq sslmode for the connection (default: PGSSLMODE, libpq's prefer)")
	fl.DurationVar(&f.timeout, "connect-timeout", 10*time.Second, "connection timeout")
}

func (f *dbFlags) tlsFiles() (ca, cert, key string) {
	pick := func(v, name string) string {
		if v != "" {
			return v
		}
		return filepath.Join(f.xroadDir, "postgresql", name)
	}
	return pick(f.ca, "ca.crt"), pick(f.cert, "server.crt"), pick(f.key, "server.key")
}

// conn resolves the connection: flags, then PG* variables, then db.properties, then
// defaults (port 5433, database postgres). With withUser, db.properties also gives the user
// and password (read-only commands); superuser commands leave the user to flags, PGUSER or
// the OS user, as "sudo -u postgres psql -p 5433" does.
func (f *dbFlags) conn(cmd *cobra.Command, withUser bool) (db.Conn, error) {
	if f.timeout <= 0 {
		return db.Conn{}, usageError(fmt.Errorf("--connect-timeout %s: want a positive duration", f.timeout))
	}
	c := db.Conn{DBName: "postgres", ConnectTimeout: f.timeout}
	props, err := xroad.ReadDBProperties(f.xroadDir, "serverconf")
	switch {
	case err == nil:
		c.Port = props.Port
		if withUser {
			c.Host, c.User, c.Password = props.Host, props.User, props.Password
			c.SSLMode = props.Params["sslmode"]
		}
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) && !cmd.Flags().Changed("xroad-dir"):
	default:
		return db.Conn{}, err
	}
	if c.Port == 0 {
		c.Port = 5433
	}
	env := func(name string, clear func()) {
		if os.Getenv(name) != "" {
			clear()
		}
	}
	env("PGHOST", func() { c.Host = "" })
	env("PGPORT", func() { c.Port = 0 })
	env("PGUSER", func() { c.User, c.Password = "", "" })
	env("PGPASSWORD", func() { c.Password = "" })
	env("PGDATABASE", func() { c.DBName = "" })
	env("PGSSLMODE", func() { c.SSLMode = "" })
	fl := cmd.Flags()
	if fl.Changed("host") {
		c.Host = f.host
	}
	if fl.Changed("port") {
		c.Port = f.port
	}
	if fl.Changed("user") {
		if c.User != f.user {
			c.Password = os.Getenv("PGPASSWORD")
		}
		c.User = f.user
	}
	if fl.Changed("dbname") {
		c.DBName = f.dbname
	}
	if fl.Changed("sslmode") {
		c.SSLMode = f.sslmode
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"ca", &c.CAFile}, {"cert", &c.CertFile}, {"key", &c.KeyFile}} {
		if fl.Changed(p.name) {
			*p.dst, _ = fl.GetString(p.name)
		}
	}
	return c, nil
}

func newDBCmd() *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Set up, watch and control the replication of the serverconf database",
		Long: `Set up, watch and control the streaming replication of X-Road's serverconf database
(guide chapters 4 and 7.2; see docs/replication.md).

  lbagent db create-instance                      the separate instance on port 5433
  lbagent db setup primary --replica replica1     TLS, WAL settings, pg_hba.conf, replication users
  lbagent db setup secondary --primary HOST --name replica1 --data-dir DIR
  lbagent db status [-o json]                     standbys on a primary; receiver, lag, pause on a secondary
  lbagent db pause | resume | wait-caught-up      the rolling upgrade's steps, on a secondary

Connection: --host, --port, --user, --dbname, libpq's PG* variables (PGPASSWORD for a
password; there is no password flag), then <xroad-dir>/db.properties, then port 5433 and
libpq's unix socket. setup, pause and resume need a superuser: run them as
"sudo -u postgres lbagent db ...". status and wait-caught-up use db.properties' serverconf
user, which "db setup primary" allows to read the replication state.

Exit status: 0 done, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C or SIGTERM; pause and
resume then say the replay state they leave, e.g. "pause requested").`,
		// Ctrl-C and SIGTERM end the command's context: a wait reports where it stopped
		// instead of dying silently; a second signal kills as usual.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			go func() { <-ctx.Done(); stop() }()
			cmd.SetContext(ctx)
		},
	}
	f.register(cmd)
	cmd.AddCommand(newDBInstanceCmd(), newDBSetupCmd(&f), newDBStatusCmd(&f),
		newDBReplayCmd(&f, "pause"), newDBReplayCmd(&f, "resume"), newDBWaitCmd(&f))
	return cmd
}

func newDBInstanceCmd() *cobra.Command {
	var o db.InstanceOptions
	cmd := &cobra.Command{
		Use:   "create-instance",
		Short: "Create the separate PostgreSQL instance for serverconf (pg_createcluster or initdb)",
		Long: `Create, but do not start, the separate PostgreSQL instance for serverconf (guide 4.2).

On Debian/Ubuntu (pg_createcluster installed) it runs
  pg_createcluster -p <port> <version> <name>
which puts the configuration in /etc/postgresql/<version>/<name>, the data in
/var/lib/postgresql/<version>/<name>; start it with systemctl start postgresql@<version>-<name>.
Elsewhere (RHEL) it runs, as the postgres user,
  initdb --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 -D <data-dir>
and writes port = <port> to <data-dir>/postgresql.auto.conf; create a systemd unit for it as
docs/replication.md shows. An existing instance is left alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := db.CreateInstance(cmd.Context(), o)
			if err != nil {
				return err
			}
			printResult(cmd.OutOrStdout(), res)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Method, "method", "", "pg_createcluster or initdb (default: pg_createcluster when installed)")
	fl.StringVar(&o.Name, "name", "serverconf", "cluster name")
	fl.IntVar(&o.Port, "port", 5433, "port of the new instance")
	fl.StringVar(&o.Version, "version", "", "PostgreSQL major version for pg_createcluster (default: newest installed)")
	fl.StringVar(&o.DataDir, "data-dir", "", "data directory for initdb (e.g. /var/lib/pgsql/15/serverconf)")
	fl.StringVar(&o.BinDir, "bin-dir", "", "directory of initdb (default: PATH, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin)")
	fl.StringVar(&o.RunAs, "run-as", "postgres", "OS user that owns the instance")
	return cmd
}

func newDBSetupCmd(f *dbFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Configure replication on the primary or on a secondary (idempotent)",
	}
	cmd.AddCommand(newDBSetupPrimaryCmd(f), newDBSetupSecondaryCmd(f))
	return cmd
}

func newDBSetupPrimaryCmd(f *dbFlags) *cobra.Command {
	var o db.PrimaryOptions
	var copyPort int
	cmd := &cobra.Command{
		Use:   "primary --replica <name> [--replica <name>...]",
		Short: "Configure the running primary instance for replication with certificate authentication",
		Long: `Configure the running serverconf instance of the primary (guide 4.3), on the primary itself:

  ALTER SYSTEM: ssl = on, ssl_ca_file/ssl_cert_file/ssl_key_file (--ca/--cert/--key),
                listen_addresses, wal_level = replica (kept if logical), max_wal_senders and
                wal_keep_size (raised to the given minimum, never lowered)
  pg_hba.conf:  "hostssl replication +slavenode samenet cert", before any other replication rule
  roles:        slavenode (NOLOGIN); one REPLICATION user without password per --replica;
                the serverconf user (password from db.properties) when missing;
                pg_monitor for the monitor user (so the agent on a secondary can watch replication)
  --copy-from-port 5432: copy the serverconf database from the default instance (pg_dump -C | psql)
                when the new instance does not have it

The configuration is reloaded; settings that need a restart are listed. A second run changes
nothing and says so. Needs a superuser: sudo -u postgres lbagent db setup primary ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.conn(cmd, false)
			if err != nil {
				return err
			}
			o.CAFile, o.CertFile, o.KeyFile = f.tlsFiles()
			if o.ServerconfPassword = os.Getenv("LBAGENT_SERVERCONF_PASSWORD"); o.ServerconfPassword == "" {
				if props, err := xroad.ReadDBProperties(f.xroadDir, "serverconf"); err == nil {
					o.ServerconfPassword = props.Password
				}
			}
			if copyPort != 0 {
				src := c
				src.Port = copyPort
				o.CopyFrom = &src
			}
			res, err := db.SetupPrimary(cmd.Context(), c, o)
			if err != nil {
				return err
			}
			printResult(cmd.OutOrStdout(), res)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&o.Replicas, "replica", nil, "node name of a secondary (its certificate's CN); repeat or comma-separate")
	fl.StringVar(&o.ListenAddresses, "listen-addresses", "*", "listen_addresses (the addresses the secondaries connect to)")
	fl.IntVar(&o.MaxWALSenders, "max-wal-senders", 0, "minimum max_wal_senders (default: replicas + 2, at least 3)")
	fl.StringVar(&o.WALKeepSize, "wal-keep-size", "128MB", "minimum wal_keep_size, WAL kept for secondaries that were offline")
	fl.StringVar(&o.HBAAddress, "hba-address", "samenet", "address field of the pg_hba.conf rule (samenet, or a CIDR like 10.0.0.0/24)")
	fl.StringVar(&o.Role, "role", "slavenode", "group role of the replication users")
	fl.StringVar(&o.ServerconfUser, "serverconf-user", "serverconf", "X-Road's database user (password: LBAGENT_SERVERCONF_PASSWORD or db.properties)")
	fl.StringVar(&o.MonitorUser, "monitor-user", "", `user allowed to read the replication state (default: the serverconf user; "-" for none)`)
	fl.IntVar(&copyPort, "copy-from-port", 0, "port of the default instance to copy the serverconf database from (0: no copy)")
	fl.StringVar(&o.CopyDB, "copy-db", "serverconf", "database to copy")
	fl.StringVar(&o.BinDir, "bin-dir", "", "directory of pg_dump and psql")
	fl.StringVar(&o.RunAs, "run-as", "", "OS user for pg_dump and psql (e.g. postgres, for peer authentication)")
	return cmd
}

func newDBSetupSecondaryCmd(f *dbFlags) *cobra.Command {
	var o db.SecondaryOptions
	var primary, name string
	var primaryPort int
	cmd := &cobra.Command{
		Use:   "secondary --primary <host> --name <nodename> --data-dir <dir>",
		Short: "Make this node's stopped instance a hot standby of the primary (pg_basebackup)",
		Long: `Make this node's serverconf instance a hot standby of the primary (guide 4.4). Stop the
instance first. It runs pg_basebackup from the primary with certificate authentication
(sslmode verify-ca, user = --name = the certificate's CN), creates standby.signal and writes
to postgresql.auto.conf (which overrides postgresql.conf): ssl and the TLS files,
listen_addresses = localhost, hot_standby = on, hot_standby_feedback = on and primary_conninfo.
Then start the instance (Debian: systemctl start postgresql@15-serverconf).

A non-empty data directory is wiped only with --force; one that is already a standby of the
same primary is left alone (a second run changes nothing).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if primary == "" || name == "" || o.DataDir == "" {
				return errors.New("setup secondary: --primary, --name and --data-dir are required")
			}
			ca, cert, key := f.tlsFiles()
			o.Primary = db.Conn{Host: primary, Port: primaryPort, User: name, CAFile: ca, CertFile: cert, KeyFile: key, SSLMode: f.sslmode}
			res, err := db.SetupSecondary(cmd.Context(), o)
			if err != nil {
				return err
			}
			printResult(cmd.OutOrStdout(), res)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&primary, "primary", "", "the primary's address (DNS name or IP)")
	fl.IntVar(&primaryPort, "primary-port", 5433, "the primary's serverconf port")
	fl.StringVar(&name, "name", "", "this node's name: its certificate's CN and its replication user")
	fl.StringVar(&o.DataDir, "data-dir", "", "the standby's data directory (Debian: /var/lib/postgresql/15/serverconf)")
	fl.StringVar(&o.ListenAddresses, "listen-addresses", "localhost", "listen_addresses of the standby")
	fl.BoolVar(&o.Force, "force", false, "wipe a non-empty data directory")
	fl.StringVar(&o.BinDir, "bin-dir", "", "directory of pg_basebackup")
	fl.StringVar(&o.RunAs, "run-as", "postgres", "OS user that owns the data directory and runs pg_basebackup")
	return cmd
}

func newDBStatusCmd(f *dbFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show replication: the standbys on a primary, receiver, lag and pause on a secondary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageError(fmt.Errorf("-o %q: want text or json", output))
			}
			c, err := f.conn(cmd, true)
			if err != nil {
				return err
			}
			conn, err := c.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(cmd.Context()))
			r, err := db.Status(cmd.Context(), conn)
			if err != nil {
				return err
			}
			if output == "json" {
				e := json.NewEncoder(cmd.OutOrStdout())
				e.SetIndent("", "  ")
				return e.Encode(r)
			}
			printStatus(cmd.OutOrStdout(), r)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newDBReplayCmd(f *dbFlags, verb string) *cobra.Command {
	short := map[string]string{
		"pause":  "Pause WAL replay on this secondary (rolling upgrade, guide 7.2.1); WAL is still received",
		"resume": "Resume WAL replay on this secondary (guide 7.2.3); then run wait-caught-up",
	}[verb]
	return &cobra.Command{
		Use:   verb,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.conn(cmd, false)
			if err != nil {
				return err
			}
			conn, err := c.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(cmd.Context()))
			fn := db.Pause
			if verb == "resume" {
				fn = db.Resume
			}
			s, err := fn(cmd.Context(), conn)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: replay %s (received %s, replayed %s, %s behind)\n",
				c.String(), s.PauseState, s.ReceiveLSN, s.ReplayLSN, units.Bytes(s.LagBytes))
			return nil
		},
	}
}

func newDBWaitCmd(f *dbFlags) *cobra.Command {
	var timeout, interval time.Duration
	cmd := &cobra.Command{
		Use:   "wait-caught-up",
		Short: "Wait until this secondary has replayed all WAL it received (replay LSN = receive LSN)",
		Long: `Wait until this secondary has replayed all the WAL it received: the guide's check
"pg_last_wal_replay_lsn() = pg_last_wal_receive_lsn()" before upgrading a secondary. A progress
line goes to stderr at every poll. Fails at once when replay is paused (run lbagent db resume),
and with exit status 1 after --timeout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, d := range []struct {
				flag string
				v    time.Duration
			}{{"--timeout", timeout}, {"--interval", interval}} {
				if d.v <= 0 {
					return usageError(fmt.Errorf("%s %s: want a positive duration", d.flag, d.v))
				}
			}
			c, err := f.conn(cmd, true)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			conn, err := c.Connect(ctx)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			errOut := cmd.ErrOrStderr()
			s, err := db.WaitCaughtUp(ctx, conn, interval, func(s *db.Standby) {
				fmt.Fprintf(errOut, "replayed %s of received %s, %s behind (%s)\n", s.ReplayLSN, s.ReceiveLSN, units.Bytes(s.LagBytes), s.PauseState)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "caught up at %s\n", s.ReplayLSN)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between polls")
	return cmd
}

func printResult(w io.Writer, r *db.Result) {
	for _, s := range r.Changed {
		fmt.Fprintln(w, "changed:", s)
	}
	for _, s := range r.Kept {
		fmt.Fprintln(w, "ok:     ", s)
	}
	for _, s := range r.Notes {
		fmt.Fprintln(w, "note:   ", s)
	}
	if len(r.RestartNeeded) > 0 {
		fmt.Fprintf(w, "restart the instance to apply: %s\n", strings.Join(r.RestartNeeded, ", "))
	}
	if len(r.Changed) == 0 {
		fmt.Fprintln(w, "nothing changed: already set up")
	}
}

func printStatus(w io.Writer, r *db.Report) {
	fmt.Fprintf(w, "%s: %s\n", r.Target, r.Role)
	if s := r.Standby; s != nil {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		last := "-"
		if !s.LastReplay.IsZero() {
			last = s.LastReplay.Format(time.RFC3339)
		}
		sender := "-"
		if s.SenderHost != "" {
			sender = fmt.Sprintf("%s:%d", s.SenderHost, s.SenderPort)
		}
		for _, kv := range [][2]string{
			{"WAL receiver", orDash(s.ReceiverState)}, {"primary", sender},
			{"received", s.ReceiveLSN.String()}, {"replayed", s.ReplayLSN.String()},
			{"replay", s.PauseState}, {"last replayed transaction", last},
			{"lag", standbyLag(s)},
		} {
			fmt.Fprintf(tw, "  %s:\t%s\n", kv[0], kv[1])
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(w, "current WAL position %s, %d standby(s)\n", r.CurrentLSN, len(r.Replicas))
	if len(r.Replicas) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tSENT\tWRITE\tFLUSH\tREPLAY\tLAG\tLAG TIME\tTLS CLIENT")
	for _, x := range r.Replicas {
		// replay_lag is NULL (0 here) when the standby has reported no replay yet.
		lagTime := "-"
		if x.LagSeconds > 0 {
			lagTime = strconv.FormatFloat(x.LagSeconds, 'f', 1, 64) + "s"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Name, orDash(x.Address), x.State,
			x.SentLSN, x.WriteLSN, x.FlushLSN, x.ReplayLSN, units.Bytes(x.LagBytes), lagTime, orDash(x.ClientDN))
	}
	tw.Flush()
}

// standbyLag says how far a standby's replay is behind what it received: the size in
// lag-limit's units and the age of the last replayed transaction, which PostgreSQL knows
// only once one was replayed since the standby started.
func standbyLag(s *db.Standby) string {
	if s.CaughtUp {
		return "none (caught up)"
	}
	lag := units.Bytes(s.LagBytes) + " received, not replayed; "
	if s.LastReplay.IsZero() {
		return lag + "time unknown (no transaction replayed since the standby started)"
	}
	return lag + "last replayed transaction " + units.Seconds(s.LagSeconds) + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
