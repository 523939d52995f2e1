// Package haproxy talks to HAProxy: its runtime API (set server state, weight, health,
// show servers state, show stat) and the agent-check line format.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// DefaultTimeout bounds a command whose context has no deadline.
const DefaultTimeout = 5 * time.Second

// maxAnswer bounds what is read for one command (show stat of a very large configuration
// stays far below it).
const maxAnswer = 64 << 20

// Client talks to the runtime API, one connection per command (non-interactive mode).
// It is safe for concurrent use.
type Client struct {
	network, address string
	display          string
}

// NewClient returns a client for addr: "/path/admin.sock", "unix:/path", "unix@/path",
// "host:port", "ipv4@host:port" or "ipv6@host:port". Nothing is dialled until a command runs.
func NewClient(addr string) *Client {
	c := &Client{network: "tcp", address: addr, display: addr}
	switch {
	case strings.HasPrefix(addr, "/"):
		c.network = "unix"
	case strings.HasPrefix(addr, "unix:"), strings.HasPrefix(addr, "unix@"):
		c.network, c.address = "unix", addr[len("unix:"):]
	case strings.HasPrefix(addr, "ipv4@"):
		c.network, c.address = "tcp4", addr[len("ipv4@"):]
	case strings.HasPrefix(addr, "ipv6@"):
		c.network, c.address = "tcp6", addr[len("ipv6@"):]
	}
	return c
}

// Addr is the address the client was made for.
func (c *Client) Addr() string { return c.display }

// Exec sends one command and returns HAProxy's whole answer. An answer whose first line is a
// known error message (No such backend., No such server., Permission denied, ...) is returned
// as a *CommandError that unwraps to the matching sentinel error. The deadline comes from ctx,
// or DefaultTimeout when ctx has none.
func (c *Client) Exec(ctx context.Context, command string) (string, error) {
	if command == "" || strings.ContainsAny(command, "\r\n") {
		return "", fmt.Errorf("haproxy: command %q: %w", command, ErrInvalidArgument)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return "", fmt.Errorf("haproxy: %w at %s: %w", ErrUnreachable, c.display, err)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	if err := conn.SetDeadline(dl); err != nil {
		return "", fmt.Errorf("haproxy: %s: %w", command, err)
	}
	// Close the connection when ctx is cancelled before the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return "", fmt.Errorf("haproxy: send %q to %s: %w", command, c.display, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxAnswer))
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = context.DeadlineExceeded
		}
		return "", fmt.Errorf("haproxy: read answer to %q from %s: %w", command, c.display, err)
	}
	answer := string(b)
	if known := knownError(answer); known != nil {
		return answer, &CommandError{Command: command, Message: strings.TrimSpace(answer), known: known}
	}
	return answer, nil
}

// run executes a command that prints nothing on success: any answer is an error.
func (c *Client) run(ctx context.Context, command string) error {
	answer, err := c.Exec(ctx, command)
	if err != nil {
		return err
	}
	if msg := strings.TrimSpace(answer); msg != "" {
		return &CommandError{Command: command, Message: msg}
	}
	return nil
}

// AdminState is a server's administrative state as set through the runtime API.
type AdminState string

const (
	StateReady AdminState = "ready"
	StateDrain AdminState = "drain"
	StateMaint AdminState = "maint"
)

// SetServerState sets backend/server to ready, drain or maint.
func (c *Client) SetServerState(ctx context.Context, backend, server string, s AdminState) error {
	switch s {
	case StateReady, StateDrain, StateMaint:
	default:
		return fmt.Errorf("haproxy: server state %q: %w", s, ErrInvalidArgument)
	}
	target, err := serverRef(backend, server)
	if err != nil {
		return err
	}
	return c.run(ctx, "set server "+target+" state "+string(s))
}

// SetWeight sets the weight of backend/server: "50" (absolute) or "50%" (of the configured
// weight).
func (c *Client) SetWeight(ctx context.Context, backend, server, weight string) error {
	if !validWeight(weight) {
		return fmt.Errorf("haproxy: weight %q: %w", weight, ErrInvalidArgument)
	}
	target, err := serverRef(backend, server)
	if err != nil {
		return err
	}
	return c.run(ctx, "set server "+target+" weight "+weight)
}

// SetHealth forces the health-check status of backend/server up or down (the next checks
// then move it as usual).
func (c *Client) SetHealth(ctx context.Context, backend, server string, up bool) error {
	target, err := serverRef(backend, server)
	if err != nil {
		return err
	}
	return c.run(ctx, "set server "+target+" health "+upDown(up))
}

// SetAgent forces the agent-check status of backend/server up or down.
func (c *Client) SetAgent(ctx context.Context, backend, server string, up bool) error {
	target, err := serverRef(backend, server)
	if err != nil {
		return err
	}
	return c.run(ctx, "set server "+target+" agent "+upDown(up))
}

// ServersState runs "show servers state" for one backend, or all when backend is "".
func (c *Client) ServersState(ctx context.Context, backend string) ([]ServerState, error) {
	command := "show servers state"
	if backend != "" {
		if !validName(backend) {
			return nil, fmt.Errorf("haproxy: backend name %q: %w", backend, ErrInvalidArgument)
		}
		command += " " + backend
	}
	answer, err := c.Exec(ctx, command)
	if err != nil {
		return nil, err
	}
	states, err := ParseServersState(answer)
	if err != nil {
		return nil, fmt.Errorf("haproxy: %s: %w", command, err)
	}
	return states, nil
}

// Stat runs "show stat" and returns every row (frontends, backends and servers).
func (c *Client) Stat(ctx context.Context) ([]StatRow, error) {
	answer, err := c.Exec(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	rows, err := ParseStat(answer)
	if err != nil {
		return nil, fmt.Errorf("haproxy: show stat: %w", err)
	}
	return rows, nil
}

// Server returns the "show stat" row of backend/server: ErrNoSuchBackend when the backend
// does not exist, ErrNoSuchServer when the server does not.
func (c *Client) Server(ctx context.Context, backend, server string) (StatRow, error) {
	if _, err := serverRef(backend, server); err != nil {
		return StatRow{}, err
	}
	rows, err := c.Stat(ctx)
	if err != nil {
		return StatRow{}, err
	}
	seen := false
	for _, r := range rows {
		if r.Proxy != backend {
			continue
		}
		if r.Server == server {
			return r, nil
		}
		seen = seen || r.Server == "BACKEND"
	}
	if !seen {
		return StatRow{}, fmt.Errorf("haproxy: backend %q: %w", backend, ErrNoSuchBackend)
	}
	return StatRow{}, fmt.Errorf("haproxy: server %s/%s: %w", backend, server, ErrNoSuchServer)
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// serverRef validates the names and returns "backend/server".
func serverRef(backend, server string) (string, error) {
	if !validName(backend) {
		return "", fmt.Errorf("haproxy: backend name %q: %w", backend, ErrInvalidArgument)
	}
	if !validName(server) {
		return "", fmt.Errorf("haproxy: server name %q: %w", server, ErrInvalidArgument)
	}
	return backend + "/" + server, nil
}

// validName accepts what can be sent as one word of a command.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == ';' || r == '/' || r == '#' || r == '\\' {
			return false
		}
	}
	return true
}

// validWeight accepts 0..256 with an optional '%' (HAProxy checks the range itself).
func validWeight(w string) bool {
	w = strings.TrimSuffix(w, "%")
	if w == "" || len(w) > 3 {
		return false
	}
	for _, r := range w {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
