// Package nginxadapter lets lbadapters drive the nodes' server lines of an nginx upstream
// through a servers file, nginx -t and a graceful reload (open-source nginx has no API).
package nginxadapter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
)

// Adapter is a lbadapters.Balancer for one nginx upstream (one servers file).
type Adapter struct {
	nginx   nginx.Instance
	file    string
	port    int
	timeout time.Duration
}

// New returns the adapter for a [balancer] section of type nginx.
func New(cfg lbadapters.BalancerConfig) (*Adapter, error) {
	if cfg.NginxConf == "" || cfg.ServersFile == "" || cfg.Port == 0 {
		return nil, errors.New("nginx balancer needs nginx-conf, servers-file and port")
	}
	timeout := cfg.CallTimeout
	if timeout <= 0 {
		timeout = lbadapters.DefaultNginxCallTimeout
	}
	return &Adapter{nginx: nginx.Instance{Conf: cfg.NginxConf, PIDFile: cfg.PIDFile}, file: cfg.ServersFile,
		port: cfg.Port, timeout: timeout}, nil
}

// Instance is the nginx the adapter drives.
func (a *Adapter) Instance() nginx.Instance { return a.nginx }

// ServersFile is the servers file the adapter keeps.
func (a *Adapter) ServersFile() string { return a.file }

// Port is the nodes' port in the upstream.
func (a *Adapter) Port() int { return a.port }

// State reads the node's server line and counts nginx's connections to it.
func (a *Adapter) State(_ context.Context, n lbadapters.Node) (lbadapters.ServerState, error) {
	f, _, err := nginx.ReadFile(a.file)
	if err != nil {
		return lbadapters.ServerState{}, err
	}
	s, err := a.find(f, n)
	if err != nil {
		return lbadapters.ServerState{}, err
	}
	st := ServerState(s)
	ip, err := a.ip(n)
	if err != nil {
		return st, err
	}
	c, err := a.nginx.Connections(ip, a.port)
	if err != nil {
		return st, a.explain(err)
	}
	st.Sessions = c.Established
	if st.State != lbadapters.StateUp && c.OldWorkersHolding > 0 {
		st.Status += fmt.Sprintf(", %d old worker(s) finishing", c.OldWorkersHolding)
		if d := a.nginx.ShutdownTimeout(); d > 0 {
			st.Status += fmt.Sprintf(" (worker_shutdown_timeout %s will cut them)", d)
		}
	}
	return st, nil
}

// ServerState is a server line as a balancer state: UP, DRAIN (operator), DOWN (agent).
func ServerState(s *nginx.Server) lbadapters.ServerState {
	st := lbadapters.ServerState{State: lbadapters.StateUp, Status: "UP"}
	switch {
	case s.Operator:
		st.State, st.Status = lbadapters.StateDrain, "DRAIN (operator)"
	case s.Agent:
		st.State, st.Status = lbadapters.StateDown, "DOWN (agent)"
		st.Description = "agent: " + s.Reason
	}
	if s.BaseWeight > 0 && !s.Down() {
		st.Status += fmt.Sprintf(" weight=%d", s.Weight)
	}
	return st
}

// Drain marks the node's line down as the operator's, has nginx check the config and
// reloads it: new connections go to the other servers, old workers keep theirs.
func (a *Adapter) Drain(ctx context.Context, n lbadapters.Node) error {
	return a.change(ctx, n, func(s *nginx.Server) { s.Operator = true })
}

// Enable lifts the operator's down (a down of lbadapter watch stays until the agent is good).
func (a *Adapter) Enable(ctx context.Context, n lbadapters.Node) error {
	return a.change(ctx, n, func(s *nginx.Server) { s.Operator = false })
}

func (a *Adapter) change(ctx context.Context, n lbadapters.Node, f func(*nginx.Server)) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	unlock, err := nginx.Lock(a.file)
	if err != nil {
		return err
	}
	defer unlock()
	file, old, err := nginx.ReadFile(a.file)
	if err != nil {
		return err
	}
	s, err := a.find(file, n)
	if err != nil {
		return err
	}
	f(s)
	if err := a.nginx.Apply(ctx, a.file, old, file.Bytes()); err != nil {
		return a.explain(err)
	}
	return nil
}

func (a *Adapter) find(f *nginx.File, n lbadapters.Node) (*nginx.Server, error) {
	s := f.Find(n.Address, a.port)
	if s == nil {
		return nil, fmt.Errorf("%w: servers file %s has no line `server %s;` for node %s",
			lbadapters.ErrNotFound, a.file, net.JoinHostPort(n.Address, fmt.Sprint(a.port)), n.Name)
	}
	return s, nil
}

// ip is the node's address as an IP (a host name is looked up).
func (a *Adapter) ip(n lbadapters.Node) (net.IP, error) {
	if ip := net.ParseIP(n.Address); ip != nil {
		return ip, nil
	}
	ips, err := net.LookupIP(n.Address)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("node %s: look up %s: %w", n.Name, n.Address, err)
	}
	return ips[0], nil
}

// explain maps nginx's errors onto lbadapters' (exit codes): a refused nginx -t or a stopped
// nginx is the balancer refusing or unreachable.
func (a *Adapter) explain(err error) error {
	switch {
	case errors.Is(err, nginx.ErrRefused):
		return &adapterError{lbadapters.ErrDenied, err.Error() + " (servers file " + a.file + " restored, nginx not reloaded)", err}
	case errors.Is(err, nginx.ErrNotRunning):
		return &adapterError{lbadapters.ErrUnreachable, "nginx (" + a.nginx.Conf + "): " + err.Error(), err}
	case errors.Is(err, context.DeadlineExceeded):
		return &adapterError{lbadapters.ErrUnreachable, fmt.Sprintf("nginx (%s) did not reload within %s: %v", a.nginx.Conf, a.timeout, err), err}
	}
	return err
}

// adapterError is a one-line message that matches both the lbadapters sentinel and the cause.
type adapterError struct {
	kind  error
	msg   string
	cause error
}

func (e *adapterError) Error() string   { return e.msg }
func (e *adapterError) Unwrap() []error { return []error{e.kind, e.cause} }
