// Package remote runs commands on a cluster's nodes over SSH (golang.org/x/crypto/ssh) for
// lbadapter upgrade: host keys are always checked against a known_hosts file, the client key
// comes from ssh-agent and/or an identity file.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/xroad-lb/lbkit/internal/hostkeys"
)

// ErrHostKey is wrapped when the node's host key is unknown or differs from known_hosts.
var ErrHostKey = errors.New("host key not verified")

// Options say how to log in to one node.
type Options struct {
	User       string
	Addr       string // host:port
	Identity   string // private key file; "" = ssh-agent only
	KnownHosts string // required
	Timeout    time.Duration
}

// Client is an SSH connection to one node.
type Client struct {
	addr string
	c    *ssh.Client
}

// Dial connects and authenticates.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if o.KnownHosts == "" {
		return nil, errors.New("ssh: no known_hosts file")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	cb, algos, err := hostKeyCheck(o.KnownHosts, o.Addr)
	if err != nil {
		return nil, err
	}
	auths, closeAgent, err := authMethods(o.Identity)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	cfg := &ssh.ClientConfig{User: o.User, Auth: auths, HostKeyCallback: cb, HostKeyAlgorithms: algos, Timeout: o.Timeout}
	d := net.Dialer{Timeout: o.Timeout}
	conn, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s@%s: %w", o.User, o.Addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(o.Timeout))
	sc, chans, reqs, err := ssh.NewClientConn(conn, o.Addr, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s@%s: %w", o.User, o.Addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &Client{addr: o.Addr, c: ssh.NewClient(sc, chans, reqs)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// ExitError is a command that ran and exited with a non-zero status (or a signal).
type ExitError struct {
	Command string
	Code    int    // -1 when killed by a signal
	Signal  string // the signal's name, if any
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("%q killed by signal %s", e.Command, e.Signal)
	}
	return fmt.Sprintf("%q exited with status %d", e.Command, e.Code)
}

// Run runs cmd (a shell command line) on the node and copies its output to stdout and
// stderr. A command that exits non-zero returns an *ExitError. When ctx ends, the command is
// sent SIGTERM and the session closed.
func (c *Client) Run(ctx context.Context, cmd string, stdout, stderr io.Writer) error {
	s, err := c.c.NewSession()
	if err != nil {
		return fmt.Errorf("ssh %s: new session: %w", c.addr, err)
	}
	defer s.Close()
	s.Stdout, s.Stderr = stdout, stderr
	if err := s.Start(cmd); err != nil {
		return fmt.Errorf("ssh %s: start %q: %w", c.addr, cmd, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGTERM)
		_ = s.Close()
		<-done
		return fmt.Errorf("%q on %s: %w", cmd, c.addr, ctx.Err())
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		if ee.Signal() != "" {
			return &ExitError{Command: cmd, Code: -1, Signal: ee.Signal()}
		}
		return &ExitError{Command: cmd, Code: ee.ExitStatus()}
	case errors.Is(err, io.EOF), strings.Contains(err.Error(), "without exit status"):
		return fmt.Errorf("%q on %s: connection lost before the command ended: %w", cmd, c.addr, err)
	}
	return fmt.Errorf("%q on %s: %w", cmd, c.addr, err)
}

// authMethods is the ssh-agent's keys (SSH_AUTH_SOCK) and the identity file's key.
func authMethods(identity string) ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	closeAgent := func() {}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			closeAgent = func() { conn.Close() }
			if ss, err := agent.NewClient(conn).Signers(); err == nil {
				signers = append(signers, ss...)
			}
		}
	}
	if identity != "" {
		b, err := os.ReadFile(identity)
		if err != nil {
			closeAgent()
			return nil, nil, fmt.Errorf("ssh identity: %w", err)
		}
		s, err := ssh.ParsePrivateKey(b)
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			closeAgent()
			return nil, nil, fmt.Errorf("ssh identity %s is protected by a passphrase: load it into ssh-agent (ssh-add) instead", identity)
		}
		if err != nil {
			closeAgent()
			return nil, nil, fmt.Errorf("ssh identity %s: %w", identity, err)
		}
		signers = append(signers, s)
	}
	if len(signers) == 0 {
		closeAgent()
		return nil, nil, errors.New("ssh: no key: set [ssh] identity or run an ssh-agent (SSH_AUTH_SOCK) holding the key")
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closeAgent, nil
}

// hostKeyCheck checks host keys against file; the algorithms are those of the keys file
// holds for addr, so the server presents one that can be verified.
func hostKeyCheck(file, addr string) (ssh.HostKeyCallback, []string, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, nil, fmt.Errorf("known_hosts %s: %w (add the nodes' host keys, e.g. ssh-keyscan -H HOST >> %s, after checking them)", file, err, file)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts %s: %w", file, err)
	}
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		r, err := hostkeys.Check(cb, hostname, remote, key)
		switch {
		case err != nil || r == nil:
			return err
		case r.Listed != nil:
			return fmt.Errorf("%s presented %s key %s, but %s line %d holds another: %w",
				hostname, key.Type(), r.Fingerprint, r.Listed.Filename, r.Listed.Line, ErrHostKey)
		}
		return fmt.Errorf("%s presented %s key %s, which %s does not list (verify it, then add it): %w",
			hostname, key.Type(), r.Fingerprint, file, ErrHostKey)
	}
	return check, hostkeys.Algorithms(cb, addr), nil
}
