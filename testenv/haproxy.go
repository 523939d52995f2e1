package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// HAProxyOptions shape an HAProxy instance. The zero value is an HAProxy with only its
// runtime API: an admin socket (unix, level admin) in its directory.
type HAProxyOptions struct {
	Frontends []HAFrontend
	Backends  []HABackend
	// StatsTCP also opens the runtime API on ipv4@127.0.0.1:<free port> (level admin).
	StatsTCP bool
	// UserSocket also opens a unix socket with level user (state changes are refused).
	UserSocket bool
	// Defaults are extra lines for the defaults section (e.g. "timeout client 1m").
	Defaults []string
	// Global are extra lines for the global section (e.g. "lua-load /path/x.lua").
	Global []string
	// Dir holds the instance's files; default a new directory under os.TempDir().
	Dir string
	// Config, when set, is the whole haproxy.cfg, used as given (the fields above but Dir are
	// then ignored). Its admin "stats socket" must be <Dir>/admin.sock and its
	// server-state-file <Dir>/server-state (HAProxy.AdminSocket, HAProxy.StateFile).
	Config string
}

// HAFrontend is a TCP frontend that sends everything to one backend.
type HAFrontend struct {
	Name    string
	Bind    string // "127.0.0.1:5500"; 0 as port picks a free port (see HAProxy.FrontendAddr)
	Backend string
}

// HABackend is a TCP backend.
type HABackend struct {
	Name    string
	Options []string // extra lines, e.g. "option httpchk", "default-server inter 200ms"
	Servers []HAServer
}

// HAServer is one server line: "server <Name> <Addr> <Options>".
type HAServer struct {
	Name    string
	Addr    string // host:port
	Options string // e.g. "check port 5588 inter 2s agent-check agent-port 5589"
}

// HAProxy is a running HAProxy (master-worker mode, in the foreground) started by this package.
type HAProxy struct {
	Dir         string
	ConfigPath  string
	AdminSocket string // unix socket, level admin
	UserSocket  string // unix socket, level user ("" unless asked for)
	StatsAddr   string // "127.0.0.1:port" of the TCP runtime API ("" unless asked for)
	StateFile   string // server-state-file, written by Reload before it reloads

	bin string

	mu        sync.Mutex
	opts      HAProxyOptions
	frontends map[string]string // name -> resolved bind address
	proc      *process
}

// NewHAProxy starts HAProxy for a test and stops it at cleanup.
func NewHAProxy(t testing.TB, opts HAProxyOptions) *HAProxy {
	t.Helper()
	Require(t, "haproxy")
	return forTest(t, func(ctx context.Context) (*HAProxy, error) { return StartHAProxy(ctx, opts) })
}

// StartHAProxy writes the configuration and starts `haproxy -W -db -f <cfg>`. It returns once
// the runtime API answers.
func StartHAProxy(ctx context.Context, opts HAProxyOptions) (*HAProxy, error) {
	bin, err := Find("haproxy")
	if err != nil {
		return nil, err
	}
	dir, err := instanceDir(opts.Dir, "testenv-haproxy-")
	if err != nil {
		return nil, err
	}
	h := &HAProxy{Dir: dir, ConfigPath: filepath.Join(dir, "haproxy.cfg"),
		AdminSocket: filepath.Join(dir, "admin.sock"), StateFile: filepath.Join(dir, "server-state"),
		bin: bin, frontends: map[string]string{}}
	if opts.UserSocket {
		h.UserSocket = filepath.Join(dir, "user.sock")
	}
	if opts.StatsTCP {
		port, err := FreePort("127.0.0.1")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		h.StatsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	if err := h.WriteConfig(opts); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// The state file as docs/haproxy.md has the operator create it before the first start
	// (the format version only), so HAProxy starts without a warning.
	if _, err := os.Stat(h.StateFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(h.StateFile, []byte("1\n"), 0o600); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("testenv: write server state: %w", err)
		}
	}
	if err := h.start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return h, nil
}

// WriteConfig (re)writes haproxy.cfg for opts; Reload makes a running HAProxy use it.
// The sockets and state file stay where they are.
func (h *HAProxy) WriteConfig(opts HAProxyOptions) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if opts.Config != "" {
		if err := os.WriteFile(h.ConfigPath, []byte(opts.Config), 0o600); err != nil {
			return fmt.Errorf("testenv: write haproxy config: %w", err)
		}
		h.opts = opts
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global\n")
	fmt.Fprintf(&b, "    stats socket %s mode 600 level admin expose-fd listeners\n", h.AdminSocket)
	if h.UserSocket != "" {
		fmt.Fprintf(&b, "    stats socket %s mode 600 level user\n", h.UserSocket)
	}
	if h.StatsAddr != "" {
		fmt.Fprintf(&b, "    stats socket ipv4@%s level admin\n", h.StatsAddr)
	}
	fmt.Fprintf(&b, "    server-state-file %s\n", h.StateFile)
	fmt.Fprintf(&b, "    maxconn 4096\n")
	for _, l := range opts.Global {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	fmt.Fprintf(&b, "\n")
	fmt.Fprintf(&b, "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 1m\n"+
		"    timeout server 1m\n    load-server-state-from-file global\n")
	for _, l := range opts.Defaults {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	for _, f := range opts.Frontends {
		bind, err := h.resolveBind(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "\nfrontend %s\n    bind %s\n    default_backend %s\n", f.Name, bind, f.Backend)
	}
	for _, be := range opts.Backends {
		fmt.Fprintf(&b, "\nbackend %s\n", be.Name)
		for _, l := range be.Options {
			fmt.Fprintf(&b, "    %s\n", l)
		}
		for _, s := range be.Servers {
			fmt.Fprintf(&b, "    server %s %s %s\n", s.Name, s.Addr, s.Options)
		}
	}
	if err := os.WriteFile(h.ConfigPath, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("testenv: write haproxy config: %w", err)
	}
	h.opts = opts
	return nil
}

// resolveBind picks a free port for a ":0" bind once and keeps it across rewrites.
func (h *HAProxy) resolveBind(f HAFrontend) (string, error) {
	if a, ok := h.frontends[f.Name]; ok {
		return a, nil
	}
	host, port, err := net.SplitHostPort(f.Bind)
	if err != nil {
		return "", fmt.Errorf("testenv: frontend %s bind %q: %w", f.Name, f.Bind, err)
	}
	if port == "0" {
		p, err := FreePort(host)
		if err != nil {
			return "", err
		}
		port = strconv.Itoa(p)
	}
	a := net.JoinHostPort(host, port)
	h.frontends[f.Name] = a
	return a, nil
}

// FrontendAddr is the host:port the named frontend listens on.
func (h *HAProxy) FrontendAddr(name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.frontends[name]
}

// Config returns the text of haproxy.cfg, for failure messages.
func (h *HAProxy) Config() string {
	b, _ := os.ReadFile(h.ConfigPath)
	return string(b)
}

func (h *HAProxy) start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	check := exec.CommandContext(ctx, h.bin, "-c", "-q", "-f", h.ConfigPath)
	if out, err := check.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: haproxy -c: %w\n%s", err, out)
	}
	proc, err := startLogged(exec.Command(h.bin, "-W", "-db", "-f", h.ConfigPath), filepath.Join(h.Dir, "haproxy.log"))
	if err != nil {
		return err
	}
	h.proc = proc
	_, err = h.waitWorker(ctx, 0)
	return err
}

// waitWorker polls the admin socket until a worker whose pid is not oldPid answers.
func (h *HAProxy) waitWorker(ctx context.Context, oldPid int) (int, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-h.proc.exited:
			return 0, fmt.Errorf("testenv: haproxy exited:\n%s", tail(filepath.Join(h.Dir, "haproxy.log"), 20))
		default:
		}
		out, err := h.CLI(ctx, "show info")
		if err == nil {
			if pid := infoPid(out); pid != 0 && pid != oldPid {
				return pid, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("testenv: haproxy worker not ready (%v):\n%s", err,
				tail(filepath.Join(h.Dir, "haproxy.log"), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func infoPid(info string) int {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(l, "Pid: "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// CLI sends one command to the admin socket and returns the answer. It is a minimal client
// for testenv's own needs; the product's client is package haproxy.
func (h *HAProxy) CLI(ctx context.Context, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", h.AdminSocket)
	if err != nil {
		return "", fmt.Errorf("testenv: haproxy cli: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", fmt.Errorf("testenv: haproxy cli %q: %w", command, err)
	}
	b, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		return "", fmt.Errorf("testenv: haproxy cli %q: %w", command, err)
	}
	return string(b), nil
}

// Reload saves the servers' runtime state to the state file (as an operator's reload script
// does), then reloads the configuration on disk with SIGUSR2 and waits for the new worker.
func (h *HAProxy) Reload(ctx context.Context) error {
	info, err := h.CLI(ctx, "show info")
	if err != nil {
		return err
	}
	oldPid := infoPid(info)
	state, err := h.CLI(ctx, "show servers state")
	if err != nil {
		return err
	}
	if err := os.WriteFile(h.StateFile, []byte(state), 0o600); err != nil {
		return fmt.Errorf("testenv: write server state: %w", err)
	}
	check := exec.CommandContext(ctx, h.bin, "-c", "-q", "-f", h.ConfigPath)
	if out, err := check.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: haproxy -c: %w\n%s", err, out)
	}
	h.mu.Lock()
	proc := h.proc
	h.mu.Unlock()
	if proc == nil {
		return errors.New("testenv: haproxy not running")
	}
	if err := syscall.Kill(proc.pid(), syscall.SIGUSR2); err != nil {
		return fmt.Errorf("testenv: reload haproxy: %w", err)
	}
	_, err = h.waitWorker(ctx, oldPid)
	return err
}

// Log returns the last lines of HAProxy's output, for test failure messages.
func (h *HAProxy) Log(lines int) string { return tail(filepath.Join(h.Dir, "haproxy.log"), lines) }

// Stop stops HAProxy (master and workers) and waits for it to exit.
func (h *HAProxy) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return nil
	}
	h.proc.stop(syscall.SIGTERM, 10*time.Second)
	h.proc = nil
	return nil
}

// Close stops HAProxy and removes its directory.
func (h *HAProxy) Close() error {
	return errors.Join(h.Stop(), os.RemoveAll(h.Dir))
}
