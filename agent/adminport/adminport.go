// Package adminport serves X-Road's loopback admin port (127.0.0.1:5566) with fasthttp:
// GET /maintenance?targetState=true|false switches maintenance mode, with X-Road's exact
// answers. A peer that is not 127.0.0.1 gets 403; an unknown path gets 404.
package adminport

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// X-Road's answers (each sent with a trailing newline).
const (
	MsgInvalid    = "Invalid parameter 'targetState', request ignored"
	MsgNoHealth   = "No HealthCheckPort found, maintenance mode not set"
	msgSetPattern = "Maintenance mode set: %t => %t"
)

// Maintenance is what the admin port switches.
type Maintenance interface {
	// SetMaintenance switches maintenance mode and returns the previous value.
	SetMaintenance(on bool) (old bool)
}

// Server is the admin port.
type Server struct {
	target        Maintenance
	healthEnabled bool
	onChange      func(old, new bool)
	srv           *fasthttp.Server
}

// New returns an admin server. healthEnabled is false when the health check port is 0
// (X-Road then refuses to set maintenance mode). onChange, if not nil, is called after every
// successful switch (for logging and persisting the state).
func New(target Maintenance, healthEnabled bool, onChange func(old, new bool)) *Server {
	s := &Server{target: target, healthEnabled: healthEnabled, onChange: onChange}
	s.srv = &fasthttp.Server{Handler: s.Handle, NoDefaultServerHeader: true,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}
	return s
}

// Serve answers on l until Shutdown.
func (s *Server) Serve(l net.Listener) error { return s.srv.Serve(l) }

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

var loopback = net.IPv4(127, 0, 0, 1)

// Handle answers one request.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	if !ctx.RemoteIP().Equal(loopback) {
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		return
	}
	if string(ctx.Path()) != "/maintenance" {
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
	old := s.target.SetMaintenance(on)
	if s.onChange != nil {
		s.onChange(old, on)
	}
	ctx.SetBodyString(fmt.Sprintf(msgSetPattern, old, on) + "\n")
}
