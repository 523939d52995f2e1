package haproxy_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/testenv"
)

// listen accepts and holds connections on 127.0.0.1; reply, when set, is written to each.
func listen(t *testing.T, reply string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if reply != "" {
				_, _ = c.Write([]byte(reply))
				c.Close()
				continue
			}
			go func() { // hold until the peer closes
				defer c.Close()
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func startHAProxy(t *testing.T) *testenv.HAProxy {
	t.Helper()
	if testing.Short() {
		t.Skip("starts HAProxy")
	}
	srv := listen(t, "")
	agent := listen(t, "up\n")
	_, agentPort, _ := net.SplitHostPort(agent)
	return testenv.NewHAProxy(t, testenv.HAProxyOptions{
		Backends: []testenv.HABackend{{Name: "xroad", Servers: []testenv.HAServer{
			{Name: "s1", Addr: srv, Options: "weight 100"},
			{Name: "s2", Addr: srv, Options: "weight 100 check inter 60s"},
			{Name: "s3", Addr: srv, Options: "weight 100 agent-check agent-addr 127.0.0.1 agent-port " +
				agentPort + " agent-inter 60s"},
		}}},
		StatsTCP:   true,
		UserSocket: true,
	})
}

func TestClientStateChanges(t *testing.T) {
	h := startHAProxy(t)
	ctx := context.Background()
	for _, addr := range []string{h.AdminSocket, "unix:" + h.AdminSocket, h.StatsAddr, "ipv4@" + h.StatsAddr} {
		t.Run(addr, func(t *testing.T) {
			c := haproxy.NewClient(addr)
			tests := []struct {
				state      haproxy.AdminState
				wantStatus string
				wantDrain  bool
				wantMaint  bool
			}{
				{haproxy.StateDrain, "DRAIN", true, false},
				{haproxy.StateMaint, "MAINT", false, true},
				{haproxy.StateReady, "no check", false, false},
			}
			for _, tt := range tests {
				if err := c.SetServerState(ctx, "xroad", "s1", tt.state); err != nil {
					t.Fatalf("SetServerState(%s): %v", tt.state, err)
				}
				row, err := c.Server(ctx, "xroad", "s1")
				if err != nil {
					t.Fatal(err)
				}
				if row.Status != tt.wantStatus {
					t.Errorf("after %s: status got %q; want %q", tt.state, row.Status, tt.wantStatus)
				}
				states, err := c.ServersState(ctx, "xroad")
				if err != nil {
					t.Fatal(err)
				}
				s := find(t, states, "s1")
				if s.Drain() != tt.wantDrain || s.Maint() != tt.wantMaint {
					t.Errorf("after %s: drain/maint got %v/%v; want %v/%v (admin state %#x)",
						tt.state, s.Drain(), s.Maint(), tt.wantDrain, tt.wantMaint, s.AdminState)
				}
			}
		})
	}
}

func find(t *testing.T, states []haproxy.ServerState, name string) haproxy.ServerState {
	t.Helper()
	for _, s := range states {
		if s.ServerName == name {
			return s
		}
	}
	t.Fatalf("server %s not in %+v", name, states)
	return haproxy.ServerState{}
}

func TestClientWeightHealthAgent(t *testing.T) {
	h := startHAProxy(t)
	ctx := context.Background()
	c := haproxy.NewClient(h.AdminSocket)

	for _, tt := range []struct {
		weight string
		want   int
	}{{"50%", 50}, {"20", 20}, {"100%", 100}} {
		if err := c.SetWeight(ctx, "xroad", "s1", tt.weight); err != nil {
			t.Fatalf("SetWeight(%s): %v", tt.weight, err)
		}
		row, err := c.Server(ctx, "xroad", "s1")
		if err != nil {
			t.Fatal(err)
		}
		if row.Weight != tt.want {
			t.Errorf("weight after %s got %d; want %d", tt.weight, row.Weight, tt.want)
		}
	}

	for _, tt := range []struct {
		name   string
		set    func(up bool) error
		server string
		up     bool
		want   string
	}{
		{"health down", func(up bool) error { return c.SetHealth(ctx, "xroad", "s2", up) }, "s2", false, "DOWN"},
		{"health up", func(up bool) error { return c.SetHealth(ctx, "xroad", "s2", up) }, "s2", true, "UP"},
		{"agent down", func(up bool) error { return c.SetAgent(ctx, "xroad", "s3", up) }, "s3", false, "DOWN (agent)"},
		{"agent up", func(up bool) error { return c.SetAgent(ctx, "xroad", "s3", up) }, "s3", true, "no check"},
	} {
		if err := tt.set(tt.up); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		row, err := c.Server(ctx, "xroad", tt.server)
		if err != nil {
			t.Fatal(err)
		}
		if row.Status != tt.want {
			t.Errorf("%s: status got %q; want %q", tt.name, row.Status, tt.want)
		}
	}
	// An agent-only server has no health check: HAProxy refuses, and says why.
	var ce *haproxy.CommandError
	if err := c.SetAgent(ctx, "xroad", "s1", false); !errors.As(err, &ce) {
		t.Errorf("SetAgent on a server without agent-check: got %v; want a *CommandError", err)
	}
}

func TestClientErrors(t *testing.T) {
	h := startHAProxy(t)
	ctx := context.Background()
	admin := haproxy.NewClient(h.AdminSocket)
	user := haproxy.NewClient(h.UserSocket)
	missing := haproxy.NewClient(filepath.Join(t.TempDir(), "missing.sock"))

	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"unknown backend", func() error { return admin.SetServerState(ctx, "nope", "s1", haproxy.StateDrain) }, haproxy.ErrNoSuchBackend},
		{"unknown server", func() error { return admin.SetServerState(ctx, "xroad", "nope", haproxy.StateDrain) }, haproxy.ErrNoSuchServer},
		{"servers state unknown backend", func() error { _, err := admin.ServersState(ctx, "nope"); return err }, haproxy.ErrNoSuchBackend},
		{"stat unknown backend", func() error { _, err := admin.Server(ctx, "nope", "s1"); return err }, haproxy.ErrNoSuchBackend},
		{"stat unknown server", func() error { _, err := admin.Server(ctx, "xroad", "nope"); return err }, haproxy.ErrNoSuchServer},
		{"level user", func() error { return user.SetServerState(ctx, "xroad", "s1", haproxy.StateDrain) }, haproxy.ErrPermissionDenied},
		{"no server part", func() error { _, err := admin.Exec(ctx, "set server xroad state drain"); return err }, haproxy.ErrRequireBackendServer},
		{"unknown command", func() error { _, err := admin.Exec(ctx, "frobnicate"); return err }, haproxy.ErrUnknownCommand},
		{"injection", func() error { return admin.SetServerState(ctx, "xroad", "s1;shutdown", haproxy.StateMaint) }, haproxy.ErrInvalidArgument},
		{"bad state", func() error { return admin.SetServerState(ctx, "xroad", "s1", "up") }, haproxy.ErrInvalidArgument},
		{"bad weight", func() error { return admin.SetWeight(ctx, "xroad", "s1", "abc") }, haproxy.ErrInvalidArgument},
		{"unreachable", func() error { return missing.SetServerState(ctx, "xroad", "s1", haproxy.StateDrain) }, haproxy.ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v; want %v", err, tt.want)
			}
		})
	}
	// The user-level socket still reads.
	if _, err := user.Server(ctx, "xroad", "s1"); err != nil {
		t.Errorf("show stat on a level user socket: %v", err)
	}
}

func TestClientDeadline(t *testing.T) {
	// A listener that accepts and never answers: the context's deadline ends the call.
	silent := listen(t, "")
	c := haproxy.NewClient(silent)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Exec(ctx, "show stat")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v; want context.DeadlineExceeded", err)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Exec(ctx2, "show stat"); done <- err }()
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel got %v; want context.Canceled", err)
	}
}
