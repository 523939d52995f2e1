package db

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xroad-lb/lbkit/db/certs"
)

// PrimaryOptions are the guide's chapter 4.3 settings for the primary's serverconf instance.
type PrimaryOptions struct {
	// TLS files as the server sees them (the guide: /etc/xroad/postgresql/{ca,server}.{crt,key}).
	CAFile, CertFile, KeyFile string
	ListenAddresses           string // default "*"
	// MaxWALSenders is a minimum: the setting is raised to it when lower. 0 means the
	// number of replicas plus 2 (never below 3, the guide's value for two secondaries).
	MaxWALSenders int
	WALKeepSize   string   // a minimum, e.g. "128MB" (the default; the guide's 8 MB is less than one WAL segment)
	Replicas      []string // one replication user per secondary, named like its certificate's CN
	Role          string   // the group role of the replication users; default "slavenode"
	HBAAddress    string   // address field of the pg_hba.conf rule; default "samenet"
	// ServerconfUser is X-Road's database user (default "serverconf"). It is created with
	// ServerconfPassword when missing; with an empty password a missing user is reported,
	// not created.
	ServerconfUser     string
	ServerconfPassword string
	// MonitorUser gets pg_monitor and may read the replay pause state, so the agent on a
	// secondary can watch replication with it; default ServerconfUser, "-" for none.
	MonitorUser string
	// CopyFrom, when set, is the default instance holding the serverconf database; it is
	// copied with pg_dump -C | psql when the new instance has no such database.
	CopyFrom *Conn
	CopyDB   string // default "serverconf"
	BinDir   string // where pg_dump and psql are; default: PATH, then /usr/lib/postgresql/*/bin
	RunAs    string // OS user for pg_dump and psql (e.g. "postgres" for peer authentication)
}

func (o PrimaryOptions) withDefaults() PrimaryOptions {
	if o.ListenAddresses == "" {
		o.ListenAddresses = "*"
	}
	if o.MaxWALSenders <= 0 {
		o.MaxWALSenders = max(len(o.Replicas)+2, 3)
	}
	if o.WALKeepSize == "" {
		o.WALKeepSize = "128MB"
	}
	if o.Role == "" {
		o.Role = "slavenode"
	}
	if o.HBAAddress == "" {
		o.HBAAddress = "samenet"
	}
	if o.ServerconfUser == "" {
		o.ServerconfUser = "serverconf"
	}
	if o.MonitorUser == "" {
		o.MonitorUser = o.ServerconfUser
	}
	if o.CopyDB == "" {
		o.CopyDB = "serverconf"
	}
	return o
}

// Result lists what a setup step did; an empty Changed means it was already done.
type Result struct {
	Changed []string `json:"changed"`
	Kept    []string `json:"kept"`
	Notes   []string `json:"notes,omitempty"`
	// RestartNeeded lists settings that take effect only after a server restart.
	RestartNeeded []string `json:"restart_needed,omitempty"`
}

func (r *Result) changed(format string, a ...any) {
	r.Changed = append(r.Changed, fmt.Sprintf(format, a...))
}
func (r *Result) kept(format string, a ...any) { r.Kept = append(r.Kept, fmt.Sprintf(format, a...)) }

// SetupPrimary configures the running instance behind target (a superuser connection, on
// the primary's own machine because pg_hba.conf is edited in place) for streaming
// replication with certificate authentication. It is idempotent: a second run changes nothing.
func SetupPrimary(ctx context.Context, target Conn, opts PrimaryOptions) (*Result, error) {
	opts = opts.withDefaults()
	if opts.CAFile == "" || opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("setup primary: the CA, certificate and key files are all required (--ca, --cert, --key)")
	}
	for _, n := range opts.Replicas {
		if n == "" || n == opts.ServerconfUser || n == opts.Role {
			return nil, fmt.Errorf("setup primary: bad replica name %q", n)
		}
		if err := certs.CheckNodeName(n); err != nil {
			return nil, fmt.Errorf("setup primary: --replica: %w", err)
		}
	}
	conn, err := target.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cfg := conn.Config()
	var super bool
	if err := conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		return nil, withTarget(cfg, "check superuser", err)
	}
	if !super {
		return nil, withTarget(cfg, "setup primary", fmt.Errorf("user %s is not a superuser (connect as postgres)", cfg.User))
	}
	res := &Result{}
	if err := ensureSettings(ctx, conn, primarySettings(opts), res); err != nil {
		return nil, err
	}
	var hbaPath string
	if err := conn.QueryRow(ctx, "SHOW hba_file").Scan(&hbaPath); err != nil {
		return nil, withTarget(cfg, "find pg_hba.conf", err)
	}
	rule := hbaRule(opts.Role, opts.HBAAddress)
	changed, err := updateHBAFile(hbaPath, rule, "replication of serverconf, certificate authentication (lbagent db setup primary)")
	if err != nil {
		return nil, withTarget(cfg, hbaPath, err)
	}
	if changed {
		res.changed("%s: added %q", hbaPath, strings.Join(rule, " "))
	} else {
		res.kept("%s has %q", hbaPath, strings.Join(rule, " "))
	}
	if len(res.Changed) > 0 {
		if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			return nil, withTarget(cfg, "reload configuration", err)
		}
		// The reload is asynchronous: wait until this session sees ssl = on, so the check
		// of pg_hba.conf's hostssl rule below does not race it.
		if err := waitSSL(ctx, conn, 10*time.Second); err != nil {
			return nil, err
		}
	}
	if err := checkHBA(ctx, conn, hbaPath); err != nil {
		return nil, err
	}
	if err := ensureRoles(ctx, conn, opts, res); err != nil {
		return nil, err
	}
	if opts.CopyFrom != nil {
		if err := copyDatabase(ctx, conn, target, opts, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func waitSSL(ctx context.Context, conn *pgx.Conn, limit time.Duration) error {
	deadline := realClock.Now().Add(limit)
	for {
		var on string
		if err := conn.QueryRow(ctx, "SELECT current_setting('ssl')").Scan(&on); err != nil {
			return withTarget(conn.Config(), "read ssl after reload", err)
		}
		if on == "on" {
			return nil
		}
		if realClock.Now().After(deadline) {
			return withTarget(conn.Config(), "reload", errors.New("ssl is still off after the reload (see the server log)"))
		}
		if err := sleep(ctx, realClock, 20*time.Millisecond); err != nil {
			return withTarget(conn.Config(), "reload", err)
		}
	}
}

func primarySettings(o PrimaryOptions) []wantSetting {
	return []wantSetting{
		{name: "ssl", value: "on", same: sameBool},
		{name: "ssl_ca_file", value: o.CAFile},
		{name: "ssl_cert_file", value: o.CertFile},
		{name: "ssl_key_file", value: o.KeyFile},
		{name: "listen_addresses", value: o.ListenAddresses},
		{name: "wal_level", value: "replica", same: func(cur, _ string) bool {
			return cur == "replica" || cur == "logical" || cur == "hot_standby"
		}},
		{name: "max_wal_senders", value: strconv.Itoa(o.MaxWALSenders), same: atLeast(parseInt)},
		{name: "wal_keep_size", value: o.WALKeepSize, same: atLeast(parseMB)},
	}
}

// checkHBA fails when PostgreSQL reports an error in the pg_hba.conf file on disk.
func checkHBA(ctx context.Context, conn *pgx.Conn, path string) error {
	rows, err := conn.Query(ctx, "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL")
	if err != nil {
		return withTarget(conn.Config(), "check pg_hba.conf", err)
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var line *int32
		var msg string
		if err := rows.Scan(&line, &msg); err != nil {
			return withTarget(conn.Config(), "check pg_hba.conf", err)
		}
		if line != nil {
			msg = fmt.Sprintf("line %d: %s", *line, msg)
		}
		bad = append(bad, msg)
	}
	if err := rows.Err(); err != nil {
		return withTarget(conn.Config(), "check pg_hba.conf", err)
	}
	if len(bad) > 0 {
		return withTarget(conn.Config(), "check "+path, errors.New(strings.Join(bad, "; ")))
	}
	return nil
}

func ensureRoles(ctx context.Context, conn *pgx.Conn, o PrimaryOptions, res *Result) error {
	cfg := conn.Config()
	exec := func(step, sql string) error {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return withTarget(cfg, step, err)
		}
		return nil
	}
	role := pgx.Identifier{o.Role}.Sanitize()
	ok, _, err := roleExists(ctx, conn, o.Role)
	if err != nil {
		return err
	}
	if ok {
		res.kept("role %s exists", o.Role)
	} else {
		if err := exec("create role "+o.Role, "CREATE ROLE "+role+" NOLOGIN"); err != nil {
			return err
		}
		res.changed("created role %s (NOLOGIN)", o.Role)
	}
	for _, name := range o.Replicas {
		id := pgx.Identifier{name}.Sanitize()
		ok, repl, err := roleExists(ctx, conn, name)
		if err != nil {
			return err
		}
		if !ok {
			if err := exec("create replication user "+name, "CREATE USER "+id+" REPLICATION PASSWORD NULL IN ROLE "+role); err != nil {
				return err
			}
			res.changed("created replication user %s in role %s", name, o.Role)
			continue
		}
		if !repl {
			if err := exec("grant REPLICATION to "+name, "ALTER ROLE "+id+" REPLICATION"); err != nil {
				return err
			}
			res.changed("gave user %s the REPLICATION attribute", name)
		}
		var member bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_auth_members m
			JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
			WHERE g.rolname = $1 AND u.rolname = $2)`, o.Role, name).Scan(&member); err != nil {
			return withTarget(cfg, "check membership of "+name, err)
		}
		if !member {
			if err := exec("grant "+o.Role+" to "+name, "GRANT "+role+" TO "+id); err != nil {
				return err
			}
			res.changed("added user %s to role %s", name, o.Role)
		}
		if repl && member {
			res.kept("replication user %s exists", name)
		}
	}
	ok, _, err = roleExists(ctx, conn, o.ServerconfUser)
	if err != nil {
		return err
	}
	switch {
	case ok:
		res.kept("user %s exists", o.ServerconfUser)
	case o.ServerconfPassword == "":
		res.Notes = append(res.Notes, fmt.Sprintf("user %s does not exist and no password was given: not created", o.ServerconfUser))
	default:
		sql := "CREATE USER " + pgx.Identifier{o.ServerconfUser}.Sanitize() + " PASSWORD " + quoteLiteral(o.ServerconfPassword)
		if _, err := conn.Exec(ctx, sql); err != nil {
			// The statement holds the password: report the step, never the SQL.
			return withTarget(cfg, "create user "+o.ServerconfUser, err)
		}
		res.changed("created user %s", o.ServerconfUser)
	}
	if o.MonitorUser != "-" {
		return ensureMonitor(ctx, conn, o.MonitorUser, res)
	}
	return nil
}

// ensureMonitor lets user read replication statistics (pg_monitor) and the replay pause
// state, which the agent on a secondary needs. Grants replicate to the standbys.
func ensureMonitor(ctx context.Context, conn *pgx.Conn, user string, res *Result) error {
	cfg := conn.Config()
	ok, _, err := roleExists(ctx, conn, user)
	if err != nil || !ok {
		return err
	}
	id := pgx.Identifier{user}.Sanitize()
	var member, canExec bool
	if err := conn.QueryRow(ctx, `SELECT pg_has_role($1, 'pg_monitor', 'MEMBER'),
		has_function_privilege($1, 'pg_get_wal_replay_pause_state()', 'EXECUTE')`, user).Scan(&member, &canExec); err != nil {
		return withTarget(cfg, "check privileges of "+user, err)
	}
	if !member {
		if _, err := conn.Exec(ctx, "GRANT pg_monitor TO "+id); err != nil {
			return withTarget(cfg, "grant pg_monitor to "+user, err)
		}
		res.changed("granted pg_monitor to %s", user)
	}
	if !canExec {
		if _, err := conn.Exec(ctx, "GRANT EXECUTE ON FUNCTION pg_get_wal_replay_pause_state() TO "+id); err != nil {
			return withTarget(cfg, "grant pause state to "+user, err)
		}
		res.changed("allowed %s to read the replay pause state", user)
	}
	if member && canExec {
		res.kept("user %s may watch replication", user)
	}
	return nil
}

func roleExists(ctx context.Context, conn *pgx.Conn, name string) (exists, replication bool, err error) {
	err = conn.QueryRow(ctx, "SELECT rolreplication FROM pg_roles WHERE rolname = $1", name).Scan(&replication)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, withTarget(conn.Config(), "look up role "+name, err)
	}
	return true, replication, nil
}

// copyDatabase is the guide's "pg_dump -C serverconf | psql -p 5433" step, skipped when the
// database exists on the target.
func copyDatabase(ctx context.Context, conn *pgx.Conn, target Conn, o PrimaryOptions, res *Result) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", o.CopyDB).Scan(&exists); err != nil {
		return withTarget(conn.Config(), "look up database "+o.CopyDB, err)
	}
	if exists {
		res.kept("database %s exists", o.CopyDB)
		return nil
	}
	dump, err := findProgram(o.BinDir, "pg_dump")
	if err != nil {
		return err
	}
	psql, err := findProgram(o.BinDir, "psql")
	if err != nil {
		return err
	}
	runAs, err := lookupUser(o.RunAs)
	if err != nil {
		return err
	}
	src := *o.CopyFrom
	src.DBName = o.CopyDB
	dst := target
	dst.DBName = "postgres"
	dumpCmd := exec.CommandContext(ctx, dump, "-C", "--no-password")
	dumpCmd.Env = src.env()
	runAs.apply(dumpCmd)
	loadCmd := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", "-f", "-")
	loadCmd.Env = dst.env()
	runAs.apply(loadCmd)
	pipe, err := dumpCmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("pg_dump: %w", err)
	}
	loadCmd.Stdin = pipe
	var dumpErr, loadOut strings.Builder
	dumpCmd.Stderr = &dumpErr
	loadCmd.Stdout, loadCmd.Stderr = &loadOut, &loadOut
	if err := dumpCmd.Start(); err != nil {
		return fmt.Errorf("start pg_dump: %w", err)
	}
	lerr := loadCmd.Run()
	derr := dumpCmd.Wait()
	if derr != nil {
		return commandError(fmt.Sprintf("pg_dump of %s from %s", o.CopyDB, src.String()), derr, []byte(dumpErr.String()))
	}
	if lerr != nil {
		return commandError(fmt.Sprintf("load %s into %s", o.CopyDB, dst.String()), lerr, []byte(loadOut.String()))
	}
	res.changed("copied database %s from %s", o.CopyDB, src.String())
	res.Notes = append(res.Notes, fmt.Sprintf("rename the old database on %s to avoid confusion: ALTER DATABASE %s RENAME TO %s_old",
		src.String(), o.CopyDB, o.CopyDB))
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
