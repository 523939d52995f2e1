package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions shape a PostgreSQL instance. The zero value is a fresh cluster on
// 127.0.0.1 at a free port with superuser "postgres" and a random password.
type PostgresOptions struct {
	Host string // listen address, default 127.0.0.1
	Port int    // 0 = a free port, kept across Stop and Start
	// Password is the superuser password, default a random one per instance (see Secret).
	// With DataDir and no Password, the password of the instance the data directory was
	// copied from (pg_basebackup copies the PasswordFile beside the data).
	Password string
	Conf     []string // extra postgresql.conf lines, e.g. "wal_level = replica"
	// DataDir, when set, is an existing data directory to start (for a standby made by
	// pg_basebackup); initdb is not run and Conf is still appended.
	DataDir string
	// Dir holds the instance's files; default a new directory under os.TempDir().
	Dir string
}

// Postgres is a running PostgreSQL server started by this package.
type Postgres struct {
	Host     string
	Port     int
	Password string
	Dir      string // the instance's own directory (data, socket, log)
	DataDir  string
	bin      string
	owner    *account

	mu         sync.Mutex
	proc       *process
	frozen     bool
	serverconf string // the serverconf user's password of the nodes that use this server
}

// ServerconfPassword is the password of the serverconf user that WriteNode creates on this
// server: random, the same for every node that shares the server.
func (p *Postgres) ServerconfPassword() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.serverconf == "" {
		p.serverconf = Secret()
	}
	return p.serverconf
}

// PostgresBinDir finds the directory of initdb and postgres: $PG_BINDIR, the newest
// /usr/lib/postgresql/*/bin, or the directory of initdb on PATH.
func PostgresBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	if d := globNewest("/usr/lib/postgresql/*/bin"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("testenv: PostgreSQL server binaries not found (install postgresql-15)")
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	return filepath.Dir(real), nil
}

// RequirePostgres is Require for PostgreSQL's server programs (see PostgresBinDir): a test
// that starts PostgreSQL itself calls it first.
func RequirePostgres(t testing.TB) {
	t.Helper()
	if _, err := PostgresBinDir(); err != nil || testing.Short() {
		Require(t, "initdb", "/usr/lib/postgresql/15/bin")
	}
}

// NewPostgres starts a PostgreSQL instance for a test and stops it at cleanup.
func NewPostgres(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
	RequirePostgres(t)
	return forTest(t, func(ctx context.Context) (*Postgres, error) { return StartPostgres(ctx, opts) })
}

// StartPostgres runs initdb (unless opts.DataDir is set) and starts the server, as the
// "postgres" user when we are root. It returns once the server accepts connections.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	owner, err := dropTo("postgres")
	if err != nil {
		return nil, err
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Password == "" && opts.DataDir != "" {
		if b, err := os.ReadFile(filepath.Join(opts.DataDir, PasswordFile)); err == nil {
			opts.Password = strings.TrimSpace(string(b))
		}
	}
	if opts.Password == "" {
		opts.Password = Secret()
	}
	if opts.Port == 0 {
		if opts.Port, err = FreePort(opts.Host); err != nil {
			return nil, err
		}
	}
	dir, err := instanceDir(opts.Dir, "testenv-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Host: opts.Host, Port: opts.Port, Password: opts.Password, Dir: dir,
		DataDir: opts.DataDir, bin: bin, owner: owner}
	if p.DataDir == "" {
		p.DataDir = filepath.Join(dir, "data")
		if err := p.initdb(ctx); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	if len(opts.Conf) > 0 {
		if err := p.AppendConf(opts.Conf...); err != nil {
			return nil, err
		}
	}
	if err := p.Start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// PasswordFile, in a data directory made by StartPostgres, holds the superuser password; a
// standby's copy made by pg_basebackup carries it.
const PasswordFile = "testenv-password"

func (p *Postgres) initdb(ctx context.Context) error {
	if err := os.WriteFile(filepath.Join(p.Dir, "pwfile"), []byte(p.Password+"\n"), 0o600); err != nil {
		return err
	}
	if err := p.owner.chownTree(p.Dir); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, "initdb"), "-D", p.DataDir, "-U", "postgres",
		"--pwfile", filepath.Join(p.Dir, "pwfile"), "--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--locale=C", "--no-sync")
	p.owner.apply(cmd)
	cmd.Dir = p.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: initdb %s: %w\n%s", p.DataDir, err, out)
	}
	if err := os.WriteFile(filepath.Join(p.DataDir, PasswordFile), []byte(p.Password+"\n"), 0o600); err != nil {
		return err
	}
	return p.owner.chownTree(p.DataDir)
}

// AppendConf adds lines to postgresql.conf (they take effect at the next start or reload).
func (p *Postgres) AppendConf(lines ...string) error {
	f, err := os.OpenFile(filepath.Join(p.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	defer f.Close()
	_, err = f.WriteString("\n" + strings.Join(lines, "\n") + "\n")
	return err
}

// AppendHBA adds lines to pg_hba.conf (they take effect at the next start or reload).
func (p *Postgres) AppendHBA(lines ...string) error {
	f, err := os.OpenFile(filepath.Join(p.DataDir, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	defer f.Close()
	_, err = f.WriteString("\n" + strings.Join(lines, "\n") + "\n")
	return err
}

// Addr is host:port.
func (p *Postgres) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// SocketDir is the directory of the server's unix socket.
func (p *Postgres) SocketDir() string { return p.Dir }

// URL is a connection URL for user/password on database db over TCP.
func (p *Postgres) URL(user, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: p.Addr(), Path: "/" + db}
	u.RawQuery = "sslmode=disable&connect_timeout=5"
	return u.String()
}

// SuperuserURL connects as postgres to db.
func (p *Postgres) SuperuserURL(db string) string { return p.URL("postgres", p.Password, db) }

// Start starts the server (again) and waits until it accepts connections.
func (p *Postgres) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		return errors.New("testenv: postgres already running")
	}
	if err := p.owner.chownTree(p.Dir); err != nil {
		return err
	}
	if p.DataDir != filepath.Join(p.Dir, "data") {
		if err := p.owner.chownTree(p.DataDir); err != nil {
			return err
		}
	}
	logPath := filepath.Join(p.Dir, "postgres.log")
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.DataDir,
		"-c", "listen_addresses="+p.Host, "-p", strconv.Itoa(p.Port),
		"-c", "unix_socket_directories="+p.Dir, "-c", "fsync=off")
	p.owner.apply(cmd)
	proc, err := startLogged(cmd, logPath)
	if err != nil {
		return err
	}
	exited := proc.exited
	p.proc, p.frozen = proc, false

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			p.proc = nil
			return fmt.Errorf("testenv: postgres exited at start:\n%s", tail(logPath, 20))
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, p.SuperuserURL("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("testenv: postgres not ready on %s: %v\n%s", p.Addr(), err, tail(logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down (fast shutdown) and waits for it to exit.
func (p *Postgres) Stop() error { return p.signalAndWait(syscall.SIGINT, 30*time.Second) }

// Kill kills the server and all its processes with SIGKILL.
func (p *Postgres) Kill() error { return p.signalAndWait(syscall.SIGKILL, 10*time.Second) }

// Freeze stops every process of the server with SIGSTOP: connections hang, nothing answers.
func (p *Postgres) Freeze() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return errors.New("testenv: postgres not running")
	}
	p.frozen = true
	return signalTree(p.proc.pid(), syscall.SIGSTOP)
}

// Thaw resumes a frozen server with SIGCONT.
func (p *Postgres) Thaw() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return errors.New("testenv: postgres not running")
	}
	p.frozen = false
	return signalTree(p.proc.pid(), syscall.SIGCONT)
}

func (p *Postgres) signalAndWait(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return nil
	}
	pid := p.proc.pid()
	if p.frozen {
		_ = signalTree(pid, syscall.SIGCONT)
		p.frozen = false
	}
	if sig == syscall.SIGKILL {
		_ = signalTree(pid, sig)
	} else {
		_ = syscall.Kill(pid, sig)
	}
	select {
	case <-p.proc.exited:
	case <-time.After(wait):
		_ = signalTree(pid, syscall.SIGKILL)
		<-p.proc.exited
	}
	p.proc = nil
	return nil
}

// Exec runs SQL statements as the superuser on database db.
func (p *Postgres) Exec(ctx context.Context, db string, sql ...string) error {
	conn, err := pgx.Connect(ctx, p.SuperuserURL(db))
	if err != nil {
		return fmt.Errorf("testenv: connect %s/%s: %w", p.Addr(), db, err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("testenv: %s: %w", s, err)
		}
	}
	return nil
}

// Close stops the server and removes its directory.
func (p *Postgres) Close() error {
	return errors.Join(p.Stop(), os.RemoveAll(p.Dir))
}

// Log returns the last lines of the server's log, for test failure messages.
func (p *Postgres) Log(lines int) string { return tail(filepath.Join(p.Dir, "postgres.log"), lines) }

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	ls := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return string(bytes.Join(ls, []byte("\n")))
}
