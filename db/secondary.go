package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xroad-lb/lbkit/db/certs"
)

// SecondaryOptions are the guide's chapter 4.4 settings for a secondary's serverconf instance.
type SecondaryOptions struct {
	// DataDir is the standby's data directory (Debian: /var/lib/postgresql/<ver>/serverconf).
	DataDir string
	// Primary is the primary's serverconf instance: Host, Port, User (the node name = the
	// certificate's CN = the replication user) and the local CAFile, CertFile and KeyFile.
	// SSLMode defaults to verify-ca.
	Primary         Conn
	ListenAddresses string // default "localhost": clients of a secondary are local
	Force           bool   // wipe a non-empty data directory
	BinDir          string // where pg_basebackup is; default: PATH, then /usr/lib/postgresql/*/bin
	RunAs           string // OS user that owns the data directory and runs pg_basebackup ("postgres")
}

// SetupSecondary makes DataDir a hot standby of the primary: pg_basebackup with certificate
// authentication, standby.signal, and the standby settings in postgresql.auto.conf (which
// overrides postgresql.conf, wherever the distribution keeps that). The instance must be
// stopped; the caller starts it afterwards. A data directory that is already a standby of
// the same primary is left alone; any other non-empty one is wiped only with Force.
func SetupSecondary(ctx context.Context, o SecondaryOptions) (*Result, error) {
	if o.DataDir == "" {
		return nil, errors.New("setup secondary: data directory is required (--data-dir)")
	}
	p := o.Primary
	if p.Host == "" || p.User == "" || p.CAFile == "" || p.CertFile == "" || p.KeyFile == "" {
		return nil, errors.New("setup secondary: the primary's host, the node name and the CA, certificate and key files are all required")
	}
	if err := certs.CheckNodeName(p.User); err != nil {
		return nil, fmt.Errorf("setup secondary: %w", err)
	}
	// The primary's pg_hba "cert" rule compares the certificate's CN with the user: a
	// mismatch would fail inside pg_basebackup with a misleading message
	// ("fe_sendauth: no password supplied" when the name is no replication user).
	cert, err := certs.LoadCert(p.CertFile)
	if err != nil {
		return nil, fmt.Errorf("setup secondary: %w", err)
	}
	if cn := cert.Subject.CommonName; cn != p.User {
		return nil, fmt.Errorf("setup secondary: the certificate %s is for %q (CN), not for node name %q: "+
			"the primary authenticates the node by its certificate's CN; use %s's own certificate (lbagent certs node --name %s)",
			p.CertFile, cn, p.User, p.User, p.User)
	}
	if p.Port == 0 {
		p.Port = 5433
	}
	if p.SSLMode == "" {
		p.SSLMode = "verify-ca"
	}
	p.Password, p.DBName = "", ""
	if o.ListenAddresses == "" {
		o.ListenAddresses = "localhost"
	}
	owner, err := lookupUser(o.RunAs)
	if err != nil {
		return nil, err
	}
	conninfo := primaryConninfo(p)
	res := &Result{}
	empty, err := prepareDataDir(o.DataDir, owner)
	if err != nil {
		return nil, err
	}
	if !empty {
		if isStandbyOf(o.DataDir, conninfo) {
			res.kept("%s is already a standby of %s:%d as %s", o.DataDir, p.Host, p.Port, p.User)
			return res, nil
		}
		if !o.Force {
			return nil, fmt.Errorf("setup secondary: %s: %w", o.DataDir, ErrDataDirNotEmpty)
		}
		if err := wipeDir(o.DataDir); err != nil {
			return nil, err
		}
		res.changed("emptied %s", o.DataDir)
	}
	bb, err := findProgram(o.BinDir, "pg_basebackup")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bb, "-D", o.DataDir, "--no-password", "--checkpoint=fast",
		"--wal-method=stream")
	cmd.Env = p.env()
	owner.apply(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, commandError(fmt.Sprintf("pg_basebackup from %s:%d as %s", p.Host, p.Port, p.User), err, out)
	}
	res.changed("copied the primary %s:%d into %s (pg_basebackup as %s, sslmode %s)", p.Host, p.Port, o.DataDir, p.User, p.SSLMode)
	signal := filepath.Join(o.DataDir, "standby.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		return nil, fmt.Errorf("setup secondary: %w", err)
	}
	if err := owner.chown(signal); err != nil {
		return nil, err
	}
	res.changed("created %s", signal)
	settings := [][2]string{
		{"ssl", "on"},
		{"ssl_ca_file", p.CAFile},
		{"ssl_cert_file", p.CertFile},
		{"ssl_key_file", p.KeyFile},
		{"listen_addresses", o.ListenAddresses},
		{"hot_standby", "on"},
		{"hot_standby_feedback", "on"},
		{"primary_conninfo", conninfo},
	}
	auto := filepath.Join(o.DataDir, "postgresql.auto.conf")
	if err := setAutoConf(auto, "standby settings written by lbagent db setup secondary", settings); err != nil {
		return nil, fmt.Errorf("setup secondary: %w", err)
	}
	res.changed("wrote the standby settings to %s", auto)
	return res, nil
}

// primaryConninfo is the libpq connection string a standby uses to stream from p. The
// application name is the node name, so the primary's pg_stat_replication names the node.
func primaryConninfo(p Conn) string {
	kv := []string{
		"host=" + quoteDSN(p.Host), "port=" + strconv.Itoa(p.Port), "user=" + quoteDSN(p.User),
		"application_name=" + quoteDSN(p.User), "sslmode=" + quoteDSN(p.SSLMode),
		"sslcert=" + quoteDSN(p.CertFile), "sslkey=" + quoteDSN(p.KeyFile), "sslrootcert=" + quoteDSN(p.CAFile),
	}
	return strings.Join(kv, " ")
}

// prepareDataDir creates dir (0700, owned by owner) when missing and reports whether it is
// empty. A running server's postmaster.pid is an error.
func prepareDataDir(dir string, owner *osUser) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("setup secondary: %w", err)
		}
		return true, owner.chown(dir)
	}
	if err != nil {
		return false, fmt.Errorf("setup secondary: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err == nil {
		return false, fmt.Errorf("setup secondary: %s: %w", dir, ErrServerRunning)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return false, fmt.Errorf("setup secondary: %w", err)
	}
	if err := owner.chown(dir); err != nil {
		return false, err
	}
	return len(entries) == 0, nil
}

func wipeDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("empty %s: %w", dir, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("empty %s: %w", dir, err)
		}
	}
	return nil
}

// isStandbyOf reports whether dir has standby.signal and exactly this primary_conninfo.
func isStandbyOf(dir, conninfo string) bool {
	if _, err := os.Stat(filepath.Join(dir, "standby.signal")); err != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
	if err != nil {
		return false
	}
	v, ok := confValue(string(b), "primary_conninfo")
	return ok && v == conninfo
}

// confValue returns the last value of name in postgresql.conf syntax.
func confValue(text, name string) (string, bool) {
	var val string
	found := false
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := confLine(line)
		if ok && k == name {
			val, found = v, true
		}
	}
	return val, found
}

// confLine parses "name = value" or "name value" with an optional single-quoted value.
func confLine(line string) (key, value string, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return "", "", false
	}
	key = strings.ToLower(line[:i])
	rest := strings.TrimLeft(line[i:], " \t")
	rest = strings.TrimLeft(strings.TrimPrefix(rest, "="), " \t")
	if strings.HasPrefix(rest, "'") {
		var b strings.Builder
		for j := 1; j < len(rest); j++ {
			c := rest[j]
			if c == '\'' {
				if j+1 < len(rest) && rest[j+1] == '\'' {
					b.WriteByte('\'')
					j++
					continue
				}
				return key, b.String(), true
			}
			if c == '\\' && j+1 < len(rest) {
				j++
				c = rest[j]
			}
			b.WriteByte(c)
		}
		return "", "", false
	}
	if j := strings.IndexAny(rest, " \t#"); j >= 0 {
		rest = rest[:j]
	}
	return key, rest, true
}

// setAutoConf sets the settings in postgresql.auto.conf, replacing earlier lines for the
// same names and keeping the rest, with the file's mode and owner.
// comment is written above them (e.g. "written by lbagent db create-instance").
func setAutoConf(path, comment string, settings [][2]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	for _, s := range settings {
		set[s[0]] = true
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if k, _, ok := confLine(line); ok && set[k] {
			continue
		}
		out = append(out, line)
	}
	out = append(out, "# "+comment)
	for _, s := range settings {
		out = append(out, s[0]+" = "+quoteConf(s[1]))
	}
	return replaceFile(path, []byte(strings.Join(out, "\n")+"\n"))
}

func quoteConf(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v) + "'"
}
