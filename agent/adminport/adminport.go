// Package adminport serves X-Road's loopback admin port (127.0.0.1:5566) with fasthttp:
// GET /maintenance?targetState=true|false switches maintenance mode, with X-Road's exact
// answers, and GET /status shows the node's full status. A peer that is not on loopback
// (127.0.0.0/8, ::1) gets 403 before anything it sent is read; another method 405; an unknown
// path 404.
package adminport

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/xroad-lb/lbkit/agent/connlimit"
	"github.com/xroad-lb/lbkit/agent/healthport"
)

// X-Road's answers (each sent with a trailing newline).
const (
	MsgInvalid    = "Invalid parameter 'targetState', request ignored"
	MsgNoHealth   = "No HealthCheckPort found, maintenance mode not set"
	msgSetPattern = "Maintenance mode set: %t => %t"
)

// Maintenance is what the admin port switches: the verdict store (verdict.Store).
type Maintenance interface {
	// SetMaintenance switches maintenance mode and returns the previous value, and the error
	// of persisting the new one (the switch stands).
	SetMaintenance(on bool) (old bool, err error)
}

// Server is the admin port.
type Server struct {
	target        Maintenance
	healthEnabled bool
	onChange      func(old, new bool, err error)
	status        fasthttp.RequestHandler
	lim           *connlimit.Limiter
	srv           *fasthttp.Server
}

// Options are the admin port's optional parts.
type Options struct {
	// OnChange, if not nil, is called after every switch (for logging), with the error of
	// persisting it.
	OnChange func(old, new bool, err error)
	// Status serves GET /status (nil: 404).
	Status fasthttp.RequestHandler
	// Logger receives the HTTP library's error lines (nil: discarded).
	Logger fasthttp.Logger
}

// maxConns caps the admin port's connections (its clients are local commands).
const maxConns = 64

// New returns an admin server. healthEnabled is false when the health check port is 0
// (X-Road then refuses to set maintenance mode).
func New(target Maintenance, healthEnabled bool, o Options) *Server {
	s := &Server{target: target, healthEnabled: healthEnabled, onChange: o.OnChange, status: o.Status,
		lim: connlimit.New(connlimit.Limits{Max: maxConns, PerIP: maxConns}, nil)}
	s.srv = healthport.NewServer(s.Handle, s.lim, o.Logger, 0, 0)
	s.srv.WriteTimeout = 10 * time.Second
	return s
}

// Serve answers on l until Shutdown. A connection from outside loopback is answered 403 and
// closed at once, before any of its request is read.
func (s *Server) Serve(l net.Listener) error { return s.srv.Serve(s.lim.Listener(l, forbid)) }

// forbidden is the whole answer to a peer that is not on loopback.
var forbidden = []byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

// forbid answers and closes a connection from outside loopback; it reports whether it did.
func forbid(c net.Conn) bool {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return false
	}
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write(forbidden)
	_ = c.Close()
	return true
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

// Handle answers one request.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	if !ctx.RemoteIP().IsLoopback() {
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		return
	}
	switch string(ctx.Path()) {
	case "/maintenance":
		if !ctx.IsGet() {
			ctx.Response.Header.Set("Allow", "GET")
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
	case "/status":
		if s.status != nil && (ctx.IsGet() || ctx.IsHead()) {
			s.status(ctx)
			return
		}
		if s.status != nil {
			ctx.Response.Header.Set("Allow", "GET, HEAD")
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	var on bool
	switch v := ctx.QueryArgs().Peek("targetState"); {
	case bytes.EqualFold(v, []byte("true")):
		on = true
	case bytes.EqualFold(v, []byte("false")):
		on = false
	default:
		ctx.SetBodyString(MsgInvalid + "\n")
		return
	}
	if !s.healthEnabled {
		ctx.SetBodyString(MsgNoHealth + "\n")
		return
	}
	old, err := s.target.SetMaintenance(on)
	if s.onChange != nil {
		s.onChange(old, on, err)
	}
	ctx.SetBodyString(fmt.Sprintf(msgSetPattern, old, on) + "\n")
}
