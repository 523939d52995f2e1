package confsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/xroad-lb/lbkit/internal/hostkeys"
)

// session is one SSH connection to the primary with its SFTP channel; the worker keeps it
// open between passes.
type session struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	conn *meteredConn
	// timedOut is set when the I/O watchdog closed the connection.
	timedOut atomic.Bool
	// ids maps the primary's owners to this node's (loaded at the first pass).
	ids *idMap
}

func (s *session) close() {
	if s == nil {
		return
	}
	// The network connection first: with a hung server, closing the SFTP channel politely
	// would wait for an answer that never comes.
	_ = s.conn.Close()
	_ = s.ssh.Close()
	_ = s.sftp.Close()
}

// Open implements fileSource.
func (s *session) Open(p string) (io.ReadCloser, error) { return s.sftp.Open(p) }

// meteredConn counts bytes and remembers when data last arrived (for the I/O timeout).
type meteredConn struct {
	net.Conn
	read, written atomic.Int64
	lastRead      atomic.Int64 // unix nanoseconds
}

func (c *meteredConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Add(int64(n))
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *meteredConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// dial connects to the primary, verifies its host key against known_hosts and opens SFTP.
func dial(ctx context.Context, cfg Config) (*session, error) {
	host, port, err := splitHostPort(cfg.Primary)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(host, port)
	hostKey, algos, err := hostKeyChecker(cfg.KnownHosts, addr, cfg.AcceptNewHostKey)
	if err != nil {
		return nil, err
	}
	idPath, err := cfg.identity()
	if err != nil {
		return nil, err
	}
	signer, err := loadSigner(idPath)
	if err != nil {
		return nil, err
	}
	clientCfg := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.ConnectTimeout,
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	mc := &meteredConn{Conn: raw}
	_ = raw.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
	stop := context.AfterFunc(dctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := ssh.NewClientConn(mc, addr, clientCfg)
	stop()
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("ssh %s@%s: %w", cfg.User, addr, err)
	}
	_ = raw.SetDeadline(time.Time{})
	client := ssh.NewClient(c, chans, reqs)
	sc, err := sftp.NewClient(client, sftp.UseConcurrentReads(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("sftp on %s: %w", addr, err)
	}
	return &session{ssh: client, sftp: sc, conn: mc}, nil
}

func loadSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return nil, fmt.Errorf("identity %s is protected by a passphrase; the sync key must have none: %w", path, ErrConfig)
	}
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return s, nil
}

// hostKeyChecker returns the host key callback for addr and the host key algorithms to ask
// for (those of the keys known_hosts lists for addr, so the server presents one we can
// verify). An unknown host is refused unless acceptNew is set: then its key is appended to
// the file. A changed key is always refused.
func hostKeyChecker(file, addr string, acceptNew bool) (ssh.HostKeyCallback, []string, error) {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		if !acceptNew {
			return nil, nil, fmt.Errorf("known_hosts %s does not exist (add the primary's key, or run once with --accept-new-host-key): %w", file, ErrHostKeyUnknown)
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, nil, fmt.Errorf("known_hosts: %w", err)
		}
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			return nil, nil, fmt.Errorf("known_hosts: %w", err)
		}
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts %s: %w", file, err)
	}
	algos := hostkeys.Algorithms(cb, addr)
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		r, err := hostkeys.Check(cb, hostname, remote, key)
		switch {
		case err != nil || r == nil:
			return err
		case r.Listed != nil:
			return fmt.Errorf("%s presented %s key %s, known_hosts %s line %d holds another: %w",
				hostname, key.Type(), r.Fingerprint, r.Listed.Filename, r.Listed.Line, ErrHostKeyMismatch)
		case !acceptNew:
			return fmt.Errorf("%s presented %s key %s, not in %s (verify it, then add it or run once with --accept-new-host-key): %w",
				hostname, key.Type(), r.Fingerprint, file, ErrHostKeyUnknown)
		}
		f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("record host key: %w", err)
		}
		defer f.Close()
		if _, err := f.WriteString(knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"); err != nil {
			return fmt.Errorf("record host key: %w", err)
		}
		return nil
	}
	return check, algos, nil
}
