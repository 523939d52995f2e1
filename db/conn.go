// Package db sets up, watches and controls the streaming replication of X-Road's serverconf
// database between a cluster's primary and its secondaries (PostgreSQL, through pgx).
package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Conn says how to reach a PostgreSQL instance. Empty fields are taken from libpq's PG*
// environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, ...)
// and then from libpq's defaults.
type Conn struct {
	Host     string // host name, IP address or unix socket directory
	Port     int
	User     string
	Password string // never printed by String
	DBName   string
	SSLMode  string // disable, prefer, require, verify-ca, verify-full; verify-ca when CertFile is set
	CAFile   string // sslrootcert
	CertFile string // sslcert: client certificate
	KeyFile  string // sslkey
	// ConnectTimeout bounds the connection set-up; default 10 s.
	ConnectTimeout time.Duration
}

// String describes the target for messages: host:port, user and database, never the password.
func (c Conn) String() string {
	cfg, err := c.Config()
	if err != nil {
		return c.rawTarget()
	}
	return describe(cfg)
}

func (c Conn) rawTarget() string {
	return fmt.Sprintf("%s:%d user %s", c.Host, c.Port, c.User)
}

func describe(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	if !strings.HasPrefix(host, "/") {
		host = net.JoinHostPort(host, strconv.Itoa(int(cfg.Port)))
	} else {
		host = fmt.Sprintf("%s/.s.PGSQL.%d", host, cfg.Port)
	}
	return fmt.Sprintf("%s (user %s, database %s)", host, cfg.User, cfg.Database)
}

// params are c's libpq keywords and values (without the password), in a fixed order;
// empty values are left out.
func (c Conn) params() [][2]string {
	var kv [][2]string
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, [2]string{k, v})
		}
	}
	add("host", c.Host)
	if c.Port != 0 {
		add("port", strconv.Itoa(c.Port))
	}
	add("user", c.User)
	add("dbname", c.DBName)
	mode := c.SSLMode
	if mode == "" && c.CertFile != "" {
		mode = "verify-ca"
	}
	add("sslmode", mode)
	add("sslrootcert", c.CAFile)
	add("sslcert", c.CertFile)
	add("sslkey", c.KeyFile)
	t := c.ConnectTimeout
	if t <= 0 {
		t = 10 * time.Second
	}
	add("connect_timeout", strconv.Itoa(int((t+time.Second-1)/time.Second)))
	return kv
}

// DSN is the libpq keyword/value string for c, without the password.
func (c Conn) DSN() string {
	var kv []string
	for _, p := range c.params() {
		kv = append(kv, p[0]+"="+quoteDSN(p[1]))
	}
	return strings.Join(kv, " ")
}

// quoteDSN quotes a libpq keyword value when needed.
func quoteDSN(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Config parses c (with the PG* environment filling the gaps) into a pgx configuration.
func (c Conn) Config() (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(c.DSN())
	if err != nil {
		return nil, fmt.Errorf("connection settings for %s: %w", c.rawTarget(), err)
	}
	if c.Password != "" {
		cfg.Password = c.Password
	}
	return cfg, nil
}

// Connect opens a connection; the error names the target and what failed.
func (c Conn) Connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := c.Config()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &ConnectError{Target: describe(cfg), Err: err}
	}
	return conn, nil
}

// ConnectError is a failed connection to Target.
type ConnectError struct {
	Target string
	Err    error
}

func (e *ConnectError) Error() string {
	return "connect to " + e.Target + ": " + oneLine(e.Err.Error())
}

// oneLine joins pgconn's one-line-per-attempt messages, dropping repeated attempts.
func oneLine(msg string) string {
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && (len(out) == 0 || out[len(out)-1] != l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}
func (e *ConnectError) Unwrap() error { return e.Err }

// Sentinel errors callers branch on (use errors.Is).
var (
	// ErrNotStandby: the instance is not in recovery (it is a primary or standalone).
	ErrNotStandby = errors.New("instance is not a standby (not in recovery)")
	// ErrPaused: WAL replay is paused, so the standby cannot catch up.
	ErrPaused = errors.New("WAL replay is paused (run lbagent db resume)")
	// ErrDataDirNotEmpty: the standby's data directory holds files and --force was not given.
	ErrDataDirNotEmpty = errors.New("data directory is not empty (use --force to wipe it)")
	// ErrServerRunning: a postmaster.pid shows a server running on the data directory.
	ErrServerRunning = errors.New("a server is running on the data directory (stop it first)")
)

// withTarget wraps err with the target description and the step that failed.
func withTarget(cfg *pgx.ConnConfig, step string, err error) error {
	return fmt.Errorf("%s on %s: %w", step, describe(cfg), err)
}
