package testenv

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
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

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHDOptions shape an OpenSSH server. The zero value is sshd on 127.0.0.1 at a free port
// that lets root log in with a generated ed25519 client key and offers SFTP.
type SSHDOptions struct {
	Host string // listen address, default 127.0.0.1 (loopback only)
	Port int    // 0 = a free port
	// User is the account the client logs in as (default "root"); it must exist.
	User string
	// SFTPServer selects the SFTP subsystem: "" = internal-sftp, otherwise a program path
	// such as /usr/lib/openssh/sftp-server.
	SFTPServer string
	// Config holds extra sshd_config lines.
	Config []string
	// Dir holds the server's files; default a new directory under os.TempDir().
	Dir string
}

// SSHD is a running OpenSSH server started by this package.
type SSHD struct {
	Addr           string // host:port
	Host           string
	Port           int
	User           string
	HostKey        ssh.PublicKey // the server's host key, for known_hosts
	ClientKeyPath  string        // private key (OpenSSH format, no passphrase) accepted by the server
	KnownHostsPath string        // a known_hosts file that lists HostKey for Addr
	Dir            string

	mu   sync.Mutex
	proc *process
	log  string
}

// NewSSHD starts sshd for a test and stops it at cleanup.
func NewSSHD(t testing.TB, opts SSHDOptions) *SSHD {
	t.Helper()
	Require(t, "sshd")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("testenv: sshd needs root")
		}
		t.Skip("testenv: sshd needs root")
	}
	return forTest(t, func(ctx context.Context) (*SSHD, error) { return StartSSHD(ctx, opts) })
}

// StartSSHD generates host and client keys, writes an sshd_config and starts
// `sshd -D -e -f <config>`; it returns once the server answers with its SSH banner.
func StartSSHD(ctx context.Context, opts SSHDOptions) (*SSHD, error) {
	bin, err := Find("sshd")
	if err != nil {
		return nil, err
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if ip := net.ParseIP(opts.Host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("testenv: sshd host %q is not a loopback address", opts.Host)
	}
	if opts.User == "" {
		opts.User = "root"
	}
	if opts.Port == 0 {
		if opts.Port, err = FreePort(opts.Host); err != nil {
			return nil, err
		}
	}
	dir, err := instanceDir(opts.Dir, "testenv-sshd-")
	if err != nil {
		return nil, err
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("testenv: create /run/sshd: %w", err)
	}
	s := &SSHD{Host: opts.Host, Port: opts.Port, User: opts.User, Dir: dir,
		Addr:           net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)),
		ClientKeyPath:  filepath.Join(dir, "client_ed25519"),
		KnownHostsPath: filepath.Join(dir, "known_hosts"),
		log:            filepath.Join(dir, "sshd.log"),
	}
	hostKeyPath := filepath.Join(dir, "host_ed25519")
	if s.HostKey, err = writeKeyPair(hostKeyPath, "testenv-host"); err != nil {
		return nil, err
	}
	clientPub, err := writeKeyPair(s.ClientKeyPath, "testenv-client")
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(clientPub), 0o644); err != nil {
		return nil, err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey) + "\n"
	if err := os.WriteFile(s.KnownHostsPath, []byte(line), 0o644); err != nil {
		return nil, err
	}
	sftp := "internal-sftp"
	if opts.SFTPServer != "" {
		sftp = opts.SFTPServer
	}
	conf := []string{
		"ListenAddress " + s.Addr,
		"HostKey " + hostKeyPath,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + authKeys,
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password",
		"AllowUsers " + opts.User,
		"MaxStartups 100:30:200",
		"MaxSessions 64",
		"LogLevel INFO",
		"Subsystem sftp " + sftp,
	}
	conf = append(conf, opts.Config...)
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, bin, "-t", "-f", confPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testenv: sshd -t: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := s.start(ctx, bin, confPath); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// writeKeyPair writes a new ed25519 private key in OpenSSH format to path (mode 0600) and
// its public half to path.pub.
func writeKeyPair(path, comment string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("testenv: marshal key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		return nil, err
	}
	return sshPub, nil
}

func (s *SSHD) start(ctx context.Context, bin, confPath string) error {
	// sshd must be started by its absolute path (it re-executes itself per connection).
	proc, err := startLogged(exec.Command(bin, "-D", "-e", "-f", confPath), s.log)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-proc.exited:
			return fmt.Errorf("testenv: sshd exited at start:\n%s", tail(s.log, 20))
		default:
		}
		if bannerOK(ctx, s.Addr) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = s.Kill()
			return fmt.Errorf("testenv: sshd not ready on %s:\n%s", s.Addr, tail(s.log, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bannerOK reports whether addr answers with an SSH-2.0 banner.
func bannerOK(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// Log returns the last lines of the server's log (for failure messages).
func (s *SSHD) Log() string { return tail(s.log, 40) }

// PID is the listening sshd's process id (0 when stopped).
func (s *SSHD) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid()
}

// Kill kills the listening sshd and every session process it started (they call setsid, so
// they are found through /proc), cutting all open connections at once.
func (s *SSHD) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	pid := s.proc.pid()
	_ = syscall.Kill(pid, syscall.SIGSTOP) // no new children while we collect them
	_ = signalTree(pid, syscall.SIGKILL)
	select {
	case <-s.proc.exited:
	case <-time.After(10 * time.Second):
		return errors.New("testenv: sshd did not exit after SIGKILL")
	}
	s.proc = nil
	return nil
}

// Close kills the server and removes its directory.
func (s *SSHD) Close() error {
	return errors.Join(s.Kill(), os.RemoveAll(s.Dir))
}
