package adminport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
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
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
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

// handle sends one request from loopback to s and returns the answer.
func handle(s *Server, method, uri string) (int, string, string) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
	s.Handle(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body()), string(ctx.Response.Header.Peek("Allow"))
}

func TestStatusPath(t *testing.T) {
	s := New(newStore(), true, Options{Status: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"status":"fail"}`) }})
	tests := []struct {
		method      string
		code        int
		body, allow string
	}{
		{"GET", 200, `{"status":"fail"}`, ""},
		{"HEAD", 200, `{"status":"fail"}`, ""}, // the body is left out on the wire by the server
		{"POST", 405, "", "GET, HEAD"},
		{"DELETE", 405, "", "GET, HEAD"},
	}
	for _, tt := range tests {
		if code, body, allow := handle(s, tt.method, "/status"); code != tt.code || body != tt.body || allow != tt.allow {
			t.Errorf("%s /status: got %d %q Allow %q; want %d %q Allow %q", tt.method, code, body, allow, tt.code, tt.body, tt.allow)
		}
	}
}

// TestSwitchesAreReportedWithThePersistError: every switch reaches OnChange with the old and
// new value and the error of persisting it; the switch stands and X-Road's answer is given.
func TestSwitchesAreReportedWithThePersistError(t *testing.T) {
	store := newStore()
	diskFull := errors.New("no space left on device")
	var persistErr error
	store.PersistMaintenance(func(bool) error { return persistErr })
	type change struct {
		old, on bool
		err     error
	}
	var got []change
	s := New(store, true, Options{OnChange: func(old, on bool, err error) { got = append(got, change{old, on, err}) }})
	tests := []struct {
		query string
		err   error
		body  string
		want  []change
	}{
		{"targetState=true", nil, "Maintenance mode set: false => true\n", []change{{false, true, nil}}},
		{"targetState=false", diskFull, "Maintenance mode set: true => false\n", []change{{true, false, diskFull}}},
		{"targetState=", nil, "Invalid parameter 'targetState', request ignored\n", nil},
		{"targetState=true&targetState=false", nil, "Maintenance mode set: false => true\n", []change{{false, true, nil}}}, // the first value counts
	}
	for _, tt := range tests {
		got, persistErr = nil, tt.err
		code, body, _ := handle(s, "GET", "/maintenance?"+tt.query)
		if code != 200 || body != tt.body {
			t.Errorf("%s: got %d %q; want 200 %q", tt.query, code, body, tt.body)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: OnChange got %v; want %v", tt.query, got, tt.want)
		}
	}
	if !store.Maintenance() {
		t.Error("maintenance mode is off; want on (the last switch)")
	}
}

func TestShutdownEndsServe(t *testing.T) {
	s := New(newStore(), true, Options{})
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	// A request answered shows Serve runs before it is shut down.
	c := ln.dial(net.IPv4(127, 0, 0, 1))
	go func() {
		_, _ = c.Write([]byte("GET /maintenance?targetState=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	}()
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("answer before shutdown: %v %v", resp, err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Shutdown returned %v; want nil", err)
	}
}
