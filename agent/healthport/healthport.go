// Package healthport serves the X-Road compatible health check port with fasthttp: any
// method and any path gets X-Road's answer (200 empty, 500 "<message>\n", 503 in
// maintenance), except the reserved paths /status (application/health+json), /metrics
// (Prometheus text) and /lb (the agent-check line, for Lua scripts in HAProxy and nginx).
package healthport

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/xroad-lb/lbkit/agent/verdict"
)

// Reserved paths.
const (
	PathStatus  = "/status"
	PathMetrics = "/metrics"
	PathLB      = "/lb"
)

// Server is the health port.
type Server struct {
	store      *verdict.Store
	components map[string]func() any
	lbLine     func(peer string) []byte
	gatherer   prometheus.Gatherer
	now        func() time.Time
	srv        *fasthttp.Server

	answered [3]atomic.Uint64 // 200, 500, 503 answers of the plain endpoint
}

// Options configure a Server.
type Options struct {
	// Components add named documents to /status under "components" (sync, replication, ...).
	Components map[string]func() any
	// LBLine, when set, serves /lb with the agent-check line (text/plain) for peer, the
	// client's remote IP (the agent-check says "ready" only to peers it told drain/maint).
	LBLine func(peer string) []byte
	// Gatherer serves /metrics; nil disables it.
	Gatherer prometheus.Gatherer
	// Now is the clock for ages in /status; default time.Now.
	Now func() time.Time
}

// New returns a health port server reading store.
func New(store *verdict.Store, o Options) *Server {
	s := &Server{store: store, components: o.Components, lbLine: o.LBLine, gatherer: o.Gatherer, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.srv = &fasthttp.Server{
		Handler:               s.Handle,
		Name:                  "",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// ReadTimeout and IdleTimeout bound every connection. No server-wide WriteTimeout:
		// a probe's answer is a few bytes, which the socket buffer takes whole, and each
		// deadline costs a clock read per request (/status and /metrics set their own).
		// LazyRequestTime: the handler never asks the request time.
		ReadTimeout:     10 * time.Second,
		IdleTimeout:     60 * time.Second,
		LazyRequestTime: true,
		ReadBufferSize:  4096,
	}
	return s
}

// Serve answers on l until Shutdown.
func (s *Server) Serve(l net.Listener) error { return s.srv.Serve(l) }

// Shutdown stops accepting and waits for open requests to finish (or ctx).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

var (
	pathStatus  = []byte(PathStatus)
	pathMetrics = []byte(PathMetrics)
	pathLB      = []byte(PathLB)
	textPlain   = []byte("text/plain; charset=utf-8")
)

// Handle answers one request; exported for in-memory tests and benchmarks.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	if len(path) > 1 && path[1] != 0 {
		switch {
		case bytes.Equal(path, pathStatus):
			s.serveStatus(ctx)
			return
		case bytes.Equal(path, pathMetrics) && s.gatherer != nil:
			s.serveMetrics(ctx)
			return
		case bytes.Equal(path, pathLB) && s.lbLine != nil:
			ctx.Response.Header.SetContentTypeBytes(textPlain)
			ctx.SetBody(s.lbLine(ctx.RemoteIP().String()))
			return
		}
	}
	v := s.store.Load()
	ctx.SetStatusCode(v.HTTPStatus)
	if len(v.HTTPBody) > 0 {
		ctx.Response.Header.SetContentTypeBytes(textPlain)
		ctx.SetBody(v.HTTPBody)
	}
	switch v.HTTPStatus {
	case 200:
		s.answered[0].Add(1)
	case 500:
		s.answered[1].Add(1)
	default:
		s.answered[2].Add(1)
	}
}

// Answered returns how many plain health answers were 200, 500 and 503.
func (s *Server) Answered() (ok, failed, maintenance uint64) {
	return s.answered[0].Load(), s.answered[1].Load(), s.answered[2].Load()
}
