package haproxyadapter

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/testenv"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		want lbadapters.State
	}{
		{"UP", lbadapters.StateUp},
		{"UP 1/3", lbadapters.StateUp},
		{"no check", lbadapters.StateUp},
		{"DOWN", lbadapters.StateDown},
		{"DOWN 1/2", lbadapters.StateDown},
		{"DOWN (agent)", lbadapters.StateDown},
		{"DRAIN", lbadapters.StateDrain},
		{"DRAIN (agent)", lbadapters.StateDrain},
		{"MAINT", lbadapters.StateMaint},
		{"MAINT (via xroad/ss1)", lbadapters.StateMaint},
		{"NOLB", lbadapters.StateNoLB},
		{"", lbadapters.StateUnknown},
		{"OPEN", lbadapters.StateUnknown},
	}
	for _, tt := range tests {
		if got := ParseStatus(tt.in); got != tt.want {
			t.Errorf("ParseStatus(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
}

// TestAdapterOnRealHAProxy drains and enables a server of a real HAProxy while a connection
// through it stays open, and checks the one-line errors for a wrong backend, server and socket.
func TestAdapterOnRealHAProxy(t *testing.T) {
	msg := testenv.NewMsgServer(t, "127.0.0.2:0")
	h := testenv.NewHAProxy(t, testenv.HAProxyOptions{
		UserSocket: true,
		Frontends:  []testenv.HAFrontend{{Name: "fe", Bind: "127.0.0.1:0", Backend: "xroad"}},
		Backends: []testenv.HABackend{{Name: "xroad", Servers: []testenv.HAServer{
			{Name: "ss1", Addr: msg.Addr},
		}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := New(lbadapters.BalancerConfig{Type: "haproxy", RuntimeAPI: h.AdminSocket, Backend: "xroad"})
	if err != nil {
		t.Fatal(err)
	}
	n := lbadapters.Node{Name: "node1", Server: "ss1"}

	c, err := net.Dial("tcp", h.FrontendAddr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := msg.WaitOpen(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// HAProxy counts the session a moment after the server accepted it: poll.
	var st lbadapters.ServerState
	for {
		st, err = a.State(ctx, n)
		if err == nil && st.State == lbadapters.StateUp && st.Sessions == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("State = %+v, %v; want UP with 1 session", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.Drain(ctx, n); err != nil {
		t.Fatal(err)
	}
	if st, err = a.State(ctx, n); err != nil || st.State != lbadapters.StateDrain || st.Sessions != 1 {
		t.Fatalf("after Drain: %+v, %v; want DRAIN with 1 session", st, err)
	}
	c.Close()
	got, err := lbadapters.Drain(ctx, a, n, lbadapters.Wait{Poll: 20 * time.Millisecond})
	if err != nil || got.Sessions != 0 {
		t.Fatalf("Drain wait: %+v, %v; want 0 sessions", got, err)
	}
	if err := a.Enable(ctx, n); err != nil {
		t.Fatal(err)
	}
	if st, err = a.State(ctx, n); err != nil || st.State != lbadapters.StateUp {
		t.Fatalf("after Enable: %+v, %v; want UP", st, err)
	}

	errTests := []struct {
		name     string
		addr     string
		backend  string
		server   string
		kind     error
		contains string
	}{
		{"wrong backend", h.AdminSocket, "nope", "ss1", lbadapters.ErrNotFound, `has no backend "nope"`},
		{"wrong server", h.AdminSocket, "xroad", "ss9", lbadapters.ErrNotFound, `has no server "ss9" for node node1`},
		{"no socket", filepath.Join(t.TempDir(), "none.sock"), "xroad", "ss1", lbadapters.ErrUnreachable, "unreachable"},
		{"user level", h.UserSocket, "xroad", "ss1", lbadapters.ErrDenied, "permission denied"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := New(lbadapters.BalancerConfig{RuntimeAPI: tt.addr, Backend: tt.backend})
			err := a.Drain(ctx, lbadapters.Node{Name: "node1", Server: tt.server})
			if !errors.Is(err, tt.kind) {
				t.Fatalf("got %v; want %v", err, tt.kind)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.contains) || strings.Contains(msg, "\n") {
				t.Errorf("message %q: want one line containing %q", msg, tt.contains)
			}
		})
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"UP", "UP 1/3", "DOWN (agent)", "DRAIN (agent)", "MAINT (via b/s)", "no check", "NOLB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		switch got := ParseStatus(s); got {
		case lbadapters.StateUp, lbadapters.StateDown, lbadapters.StateDrain, lbadapters.StateMaint,
			lbadapters.StateNoLB, lbadapters.StateUnknown:
		default:
			t.Fatalf("ParseStatus(%q) = %q: not a known state", s, got)
		}
	})
}
