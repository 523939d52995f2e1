package adminport

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/xroad-lb/lbkit/agent/verdict"
)

// newStore is the verdict store the admin port switches in the daemon.
func newStore() *verdict.Store { return verdict.NewStore("standalone", nil) }

// remoteConn is one end of a pipe that claims to come from addr.
type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

// pipeListener hands out the server ends of pipes whose peers claim the given address. No
// traffic leaves the process.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { close(l.done); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5566} }

func (l *pipeListener) dial(from net.IP) net.Conn {
	client, server := net.Pipe()
	l.conns <- remoteConn{Conn: server, addr: &net.TCPAddr{IP: from, Port: 40000}}
	return client
}

func serve(t *testing.T, target Maintenance) *pipeListener {
	t.Helper()
	s := New(target, true, Options{})
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// TestForeignPeerIsRefusedBeforeItsRequestIsRead: a peer outside loopback gets 403 and the
// connection is closed although it has sent nothing yet; its body is never read.
func TestForeignPeerIsRefusedBeforeItsRequestIsRead(t *testing.T) {
	f := newStore()
	ln := serve(t, f)
	c := ln.dial(net.IPv4(192, 0, 2, 7)) // documentation address: only a claim, nothing is sent there
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer before sending anything: %v", err)
	}
	if resp.StatusCode != 403 {
		t.Fatalf("got %d; want 403", resp.StatusCode)
	}
	// The server closed its end: a request written now finds nobody reading.
	if _, err := c.Write([]byte("GET /maintenance?targetState=true HTTP/1.1\r\nHost: x\r\n\r\n")); err == nil {
		t.Error("the server still reads from a refused peer")
	}
	if f.Maintenance() {
		t.Error("a foreign peer switched maintenance mode")
	}
}

func TestLoopbackPeers(t *testing.T) {
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 3, 2, 1), net.IPv6loopback} {
		f := newStore()
		ln := serve(t, f)
		c := ln.dial(ip)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			_, _ = c.Write([]byte("GET /maintenance?targetState=true HTTP/1.1\r\nHost: x\r\n\r\n"))
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !f.Maintenance() {
			t.Errorf("%s: got %d, maintenance %v; want 200 and on", ip, resp.StatusCode, f.Maintenance())
		}
		c.Close()
	}
}

func TestHandle(t *testing.T) {
	tests := []struct {
		method, uri, from string
		code              int
		body              string
		on                bool
	}{
		{"GET", "/maintenance?targetState=true", "127.0.0.1", 200, "Maintenance mode set: false => true\n", true},
		{"GET", "/maintenance?targetState=FaLsE", "::1", 200, "Maintenance mode set: false => false\n", false},
		{"GET", "/maintenance?targetState=yes", "127.0.0.1", 200, "Invalid parameter 'targetState', request ignored\n", false},
		{"HEAD", "/maintenance?targetState=true", "127.0.0.1", 405, "", false},
		{"DELETE", "/maintenance?targetState=true", "127.0.0.1", 405, "", false},
		{"POST", "/maintenance?targetState=true", "127.0.0.1", 405, "", false},
		{"GET", "/maintenance?targetState=true", "192.0.2.7", 403, "", false},
		{"GET", "/other", "127.0.0.1", 404, "", false},
		{"GET", "/status", "127.0.0.1", 404, "", false}, // no status handler given
	}
	for _, tt := range tests {
		f := newStore()
		s := New(f, true, Options{})
		var req fasthttp.Request
		req.Header.SetMethod(tt.method)
		req.SetRequestURI(tt.uri)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tt.from), Port: 1}, nil)
		s.Handle(&ctx)
		if got := ctx.Response.StatusCode(); got != tt.code || string(ctx.Response.Body()) != tt.body || f.Maintenance() != tt.on {
			t.Errorf("%s %s from %s: got %d %q on=%v; want %d %q on=%v", tt.method, tt.uri, tt.from, got,
				ctx.Response.Body(), f.Maintenance(), tt.code, tt.body, tt.on)
		}
		if tt.code == 405 && !strings.Contains(string(ctx.Response.Header.Peek("Allow")), "GET") {
			t.Errorf("%s %s: 405 without Allow: GET", tt.method, tt.uri)
		}
	}
	f := newStore()
	if got := New(f, false, Options{}); got != nil {
		var req fasthttp.Request
		req.SetRequestURI("/maintenance?targetState=true")
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
		got.Handle(&ctx)
		if b := string(ctx.Response.Body()); b != "No HealthCheckPort found, maintenance mode not set\n" || f.Maintenance() {
			t.Errorf("health port disabled: got %q; want X-Road's refusal", b)
		}
	}
}
