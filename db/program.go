package db

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// findProgram locates a PostgreSQL program: in binDir when given, else on PATH, else in the
// newest /usr/lib/postgresql/*/bin (Debian) or /usr/pgsql-*/bin (RHEL).
func findProgram(binDir, name string) (string, error) {
	if binDir != "" {
		p := filepath.Join(binDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s not found in %s", name, binDir)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, pat := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"} {
		m, _ := filepath.Glob(filepath.Join(pat, name))
		if len(m) > 0 {
			sort.Strings(m)
			return m[len(m)-1], nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin (install the PostgreSQL server package)", name)
}

// osUser is the account a PostgreSQL program runs as.
type osUser struct {
	name     string
	uid, gid int
}

// lookupUser returns the named account, or nil for "" (run as ourselves).
func lookupUser(name string) (*osUser, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("look up OS user %q: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("OS user %q: uid %q", name, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("OS user %q: gid %q", name, u.Gid)
	}
	return &osUser{name: name, uid: uid, gid: gid}, nil
}

// apply makes cmd run as u (when u is not ourselves).
func (u *osUser) apply(cmd *exec.Cmd) {
	if u == nil || os.Geteuid() == u.uid {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	cmd.Env = append(cmd.Env, "HOME="+os.TempDir(), "USER="+u.name, "LOGNAME="+u.name)
}

func (u *osUser) chown(path string) error {
	if u == nil || os.Geteuid() != 0 {
		return nil
	}
	if err := os.Lchown(path, u.uid, u.gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, u.name, err)
	}
	return nil
}

// env returns libpq environment variables for c (with the password, so the command line
// and the process list never show it).
func (c Conn) env() []string {
	// Later entries win over the inherited PG* variables (exec.Cmd keeps the last duplicate).
	env := os.Environ()
	for _, p := range c.params() {
		name := "PG" + strings.ToUpper(p[0]) // libpq's variable for each keyword ...
		if p[0] == "dbname" {
			name = "PGDATABASE" // ... but this one
		}
		env = append(env, name+"="+p[1])
	}
	if c.Password != "" {
		env = append(env, "PGPASSWORD="+c.Password)
	}
	return env
}

// commandError is a failed program run with the end of its output.
func commandError(what string, err error, out []byte) error {
	msg := strings.TrimSpace(string(out))
	if len(msg) > 2000 {
		msg = "..." + msg[len(msg)-2000:]
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && msg != "" {
		return fmt.Errorf("%s: %w: %s", what, err, msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}
