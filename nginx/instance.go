package nginx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultPIDFile is where Debian's nginx writes its master's pid when the config has no pid
// directive.
const DefaultPIDFile = "/run/nginx.pid"

// Errors callers branch on (errors.Is).
var (
	// ErrRefused is matched by a *TestError: nginx -t refused the configuration.
	ErrRefused = errors.New("nginx -t refused the configuration")
	// ErrNotRunning: no nginx master at the pid from the pid file.
	ErrNotRunning = errors.New("nginx is not running")
)

// TestError is nginx -t's refusal, with nginx's own error line.
type TestError struct {
	Line string // e.g. `nginx: [emerg] invalid parameter "wieght=2" in /etc/nginx/lbkit/x.servers:3`
}

func (e *TestError) Error() string { return "nginx -t refused the configuration: " + e.Line }

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *TestError) Unwrap() error { return ErrRefused }

// Instance is one nginx: its main config and where its master's pid is.
type Instance struct {
	Bin     string // the nginx program; default "nginx" on PATH or in /usr/sbin
	Conf    string // the main config, for nginx -t -c and its pid directive
	PIDFile string // overrides the config's pid directive
}

func (in Instance) bin() string {
	if in.Bin != "" {
		return in.Bin
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return "/usr/sbin/nginx"
}

// Test runs nginx -t -c Conf; a refusal is a *TestError with nginx's first error line.
func (in Instance) Test(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, in.bin(), "-t", "-q", "-c", in.Conf).CombinedOutput()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("nginx -t: %w", ctx.Err())
	case !errors.As(err, &ee) || ee.ExitCode() < 0:
		return fmt.Errorf("run nginx -t: %w", err)
	}
	return &TestError{Line: errorLine(out)}
}

// errorLine picks nginx's [emerg] (or first) line from its output, without the time and
// process ids of its log format: `nginx: [emerg] invalid parameter "x" in /etc/...:3`.
func errorLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		for _, level := range []string{"[emerg]", "[alert]", "[crit]"} {
			if _, msg, ok := strings.Cut(l, level+" "); ok {
				// "2026/11/30 10:50:01 [emerg] 25787#25787: invalid ..."
				if pid, rest, ok := strings.Cut(msg, ": "); ok && strings.Contains(pid, "#") {
					msg = rest
				}
				return "nginx: " + level + " " + strings.TrimSpace(msg)
			}
		}
	}
	return strings.TrimSpace(lines[0])
}

// mainDirective returns the value of a directive of the config's main context (outside
// every block), as written; "" when absent. Includes are not followed.
func (in Instance) mainDirective(name string) (string, error) {
	b, err := os.ReadFile(in.Conf)
	if err != nil {
		return "", fmt.Errorf("read nginx config: %w", err)
	}
	depth := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, stmt := range strings.SplitAfter(line, ";") {
			t := strings.TrimSpace(stmt)
			if depth == 0 && strings.HasPrefix(t, name) && strings.HasSuffix(t, ";") {
				if f := strings.Fields(strings.TrimSuffix(t, ";")); len(f) == 2 && f[0] == name {
					return f[1], nil
				}
			}
			depth += strings.Count(stmt, "{") - strings.Count(stmt, "}")
		}
	}
	return "", nil
}

// PIDFilePath is PIDFile, else the config's pid directive, else DefaultPIDFile.
func (in Instance) PIDFilePath() (string, error) {
	if in.PIDFile != "" {
		return in.PIDFile, nil
	}
	p, err := in.mainDirective("pid")
	if err != nil || p == "" {
		return DefaultPIDFile, err
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s: pid %s is relative to nginx's prefix: set pid-file", in.Conf, p)
	}
	return p, nil
}

// ShutdownTimeout is the config's worker_shutdown_timeout (0 when not set: old workers wait
// for their last connection).
func (in Instance) ShutdownTimeout() time.Duration {
	v, err := in.mainDirective("worker_shutdown_timeout")
	if err != nil || v == "" {
		return 0
	}
	return parseNginxTime(v)
}

// parseNginxTime reads nginx's time syntax ("30s", "1m", "1m30s", "500ms", "10" = seconds).
func parseNginxTime(v string) time.Duration {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	var total time.Duration
	for v != "" {
		i := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
		if i <= 0 {
			return 0
		}
		n, _ := strconv.Atoi(v[:i])
		j := i
		for j < len(v) && (v[j] < '0' || v[j] > '9') {
			j++
		}
		unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute,
			"h": time.Hour, "d": 24 * time.Hour}[v[i:j]]
		if unit == 0 {
			return 0
		}
		total += time.Duration(n) * unit
		v = v[j:]
	}
	return total
}

// MasterPID reads the pid file and checks that the process lives.
func (in Instance) MasterPID() (int, error) {
	path, err := in.PIDFilePath()
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%w: pid file %s holds %q", ErrNotRunning, path, strings.TrimSpace(string(b)))
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, fmt.Errorf("%w: no process %d (pid file %s)", ErrNotRunning, pid, path)
	}
	return pid, nil
}

// Reload sends the master SIGHUP (graceful reload: old workers stop accepting and finish
// their connections) and waits until none of the workers from before accepts any more,
// so that no new connection follows the old configuration once it returns.
func (in Instance) Reload(ctx context.Context) error {
	master, err := in.MasterPID()
	if err != nil {
		return err
	}
	before, err := workers(master)
	if err != nil {
		return err
	}
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload nginx (SIGHUP to %d): %w", master, err)
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		now, err := workers(master)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(now, func(w worker) bool {
			return !w.shuttingDown && slices.ContainsFunc(before, func(b worker) bool { return b.pid == w.pid })
		}) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nginx master %d did not replace its workers after SIGHUP (see its error log): %w", master, ctx.Err())
		case <-t.C:
		}
	}
}

// worker is a child process of the master.
type worker struct {
	pid          int
	shuttingDown bool // an old worker finishing its connections after a reload
}

// workers lists the master's child processes.
func workers(master int) ([]worker, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []worker
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(master) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if !bytes.Contains(cmd, []byte("worker process")) {
			continue // cache manager and loader
		}
		out = append(out, worker{pid: pid, shuttingDown: bytes.Contains(cmd, []byte("shutting down"))})
	}
	return out, nil
}
