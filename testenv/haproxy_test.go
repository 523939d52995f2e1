package testenv

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer accepts connections on 127.0.0.1 and answers every line with "echo <line>".
func echoServer(t *testing.T) string {
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
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write([]byte("echo " + sc.Text() + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// adminState returns srv_admin_state of backend/server from "show servers state".
func adminState(t *testing.T, h *HAProxy, backend, server string) string {
	t.Helper()
	out, err := h.CLI(context.Background(), "show servers state "+backend)
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == "#" {
			header = f[1:]
			continue
		}
		if header == nil || len(f) != len(header) {
			continue
		}
		row := map[string]string{}
		for i, k := range header {
			row[k] = f[i]
		}
		if row["srv_name"] == server {
			return row["srv_admin_state"]
		}
	}
	t.Fatalf("server %s/%s not in:\n%s", backend, server, out)
	return ""
}

func TestHAProxyForwardsAndKeepsStateOverReload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts HAProxy")
	}
	backendAddr := echoServer(t)
	opts := HAProxyOptions{
		Frontends: []HAFrontend{{Name: "fe", Bind: "127.0.0.1:0", Backend: "be"}},
		Backends: []HABackend{{Name: "be", Servers: []HAServer{
			{Name: "s1", Addr: backendAddr},
			{Name: "s2", Addr: backendAddr},
		}}},
		StatsTCP:   true,
		UserSocket: true,
	}
	h := NewHAProxy(t, opts)

	c, err := net.DialTimeout("tcp", h.FrontendAddr("fe"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "echo hi\n" {
		t.Fatalf("through the frontend got %q, %v; want %q", line, err, "echo hi\n")
	}

	ctx := context.Background()
	if out, err := h.CLI(ctx, "set server be/s2 state drain"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("set drain: %q, %v", out, err)
	}
	if got, want := adminState(t, h, "be", "s2"), "8"; got != want {
		t.Fatalf("admin state before reload got %v; want %v", got, want)
	}
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := adminState(t, h, "be", "s2"), "8"; got != want {
		t.Fatalf("admin state after reload got %v; want %v (server-state-file)\n%s", got, want, h.Log(20))
	}
	if got, want := adminState(t, h, "be", "s1"), "0"; got != want {
		t.Fatalf("s1 admin state after reload got %v; want %v", got, want)
	}

	// The TCP runtime API answers too.
	tc, err := net.DialTimeout("tcp", h.StatsAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("TCP stats socket: %v", err)
	}
	tc.Close()
}

// TestHAProxyFirstStartQuiet: a fresh instance starts without HAProxy's warning about a
// missing server-state file (the file is created as docs/haproxy.md tells operators).
func TestHAProxyFirstStartQuiet(t *testing.T) {
	h := NewHAProxy(t, HAProxyOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.CLI(ctx, "show info"); err != nil {
		t.Fatal(err)
	}
	if log := h.Log(50); strings.Contains(log, "server state file") || strings.Contains(log, "WARNING") {
		t.Errorf("HAProxy warned at its first start:\n%s", log)
	}
}
