// Package healthport serves the X-Road compatible health check port with fasthttp: any
// method and any path gets X-Road's answer (200 empty, 500 "<message>\n", 503 in
// maintenance), except the reserved paths /status (application/health+json), /metrics
// (Prometheus text) and /lb (the agent-check line, for Lua scripts in HAProxy and nginx).
package healthport

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/xroad-lb/lbkit/agent/connlimit"
	"github.com/xroad-lb/lbkit/agent/redact"
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
	metrics    fasthttp.RequestHandler // /metrics, when there is a gatherer
	clock      clockwork.Clock
	redactor   *redact.Redactor
	token      []byte
	limiter    *connlimit.Limiter
	srv        *fasthttp.Server

	answered [3]atomic.Uint64 // 200, 500, 503 answers of the plain endpoint
}

// Options configure a Server.
type Options struct {
	// Components add named documents to /status under "components" (sync, replication, ...).
	Components map[string]func() any
	// LBLine, when set, serves /lb with the agent-check line (text/plain) for peer, the
	// client's remote IP on a GET (the agent-check says "ready" only to peers it told
	// drain/maint, and a GET delivers it); "" for any other method, which never consumes a
	// "ready" nor is told anything.
	LBLine func(peer string) []byte
	// Gatherer serves /metrics; nil disables it.
	Gatherer prometheus.Gatherer
	// Clock is the clock for ages in /status; default the real clock.
	Clock clockwork.Clock

	// Limiter caps the connections (nil: no caps); its idle connections are closed first
	// when at the cap.
	Limiter *connlimit.Limiter
	// Logger receives the HTTP library's error lines (malformed requests); nil discards them.
	Logger fasthttp.Logger
	// ReadTimeout bounds reading one request; IdleTimeout a keep-alive wait for the next.
	ReadTimeout, IdleTimeout time.Duration
	// Redactor masks secrets in /status and /metrics (nil: none).
	Redactor *redact.Redactor
	// StatusToken, when set, gives the full /status (causes, components) to a request with
	// "Authorization: Bearer <token>"; without it the health port's /status shows what a
	// balancer's operator needs and no more. The admin port always shows it all.
	StatusToken string
}

// Defaults of the connection timeouts: a probe sends its request in milliseconds.
const (
	DefaultReadTimeout = 2 * time.Second
	DefaultIdleTimeout = 10 * time.Second
)

// Request limits: a probe is a request line and a few headers, without a body.
const (
	maxBody            = 1024
	readBufferSize     = 4096 // also the largest request head
	maxRequestsPerConn = 1000 // a pipelining client reconnects, and waits its turn
)

// New returns a health port server reading store.
func New(store *verdict.Store, o Options) *Server {
	s := &Server{store: store, components: o.Components, lbLine: o.LBLine, gatherer: o.Gatherer, clock: o.Clock,
		redactor: o.Redactor, limiter: o.Limiter}
	if s.clock == nil {
		s.clock = clockwork.NewRealClock()
	}
	if s.redactor == nil {
		s.redactor = &redact.Redactor{}
	}
	if o.StatusToken != "" {
		s.token = []byte("Bearer " + o.StatusToken)
	}
	if s.gatherer != nil {
		s.metrics = metricsHandler(s.gatherer, s.redactor)
	}
	s.srv = NewServer(s.Handle, o.Limiter, o.Logger, o.ReadTimeout, o.IdleTimeout)
	return s
}

// NewServer returns a fasthttp server hardened for a port that anyone on the network may
// reach: bounded request reads and keep-alive waits, tiny request heads and no bodies, a
// limit of requests per connection, library errors to
// logger without request contents, and the limiter told which connections are idle. Each
// connection holds a 4 KiB read and a 4 KiB write buffer, back in the pool when it closes.
func NewServer(h fasthttp.RequestHandler, lim *connlimit.Limiter, logger fasthttp.Logger, read, idle time.Duration) *fasthttp.Server {
	if read <= 0 {
		read = DefaultReadTimeout
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if logger == nil {
		logger = discard{}
	}
	srv := &fasthttp.Server{
		Handler:               h,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// ReadTimeout and IdleTimeout bound every connection. No server-wide WriteTimeout:
		// a probe's answer is a few bytes, which the socket buffer takes whole, and each
		// deadline costs a clock read per request (/status and /metrics set their own).
		// LazyRequestTime: the handler never asks the request time.
		ReadTimeout:                  read,
		IdleTimeout:                  idle,
		LazyRequestTime:              true,
		ReadBufferSize:               readBufferSize,
		WriteBufferSize:              4096,
		MaxRequestBodySize:           maxBody,
		DisablePreParseMultipartForm: true,
		MaxRequestsPerConn:           maxRequestsPerConn,
		// Not ReduceMemoryUsage: releasing the buffers at every keep-alive wait costs
		// throughput, and 8 KiB per connection is bounded by the connection caps.
		SecureErrorLogMessage: true,
		Logger:                logger,
		ErrorHandler:          requestError,
	}
	if lim != nil {
		srv.ConnState = func(c net.Conn, st fasthttp.ConnState) {
			switch st {
			case fasthttp.StateNew, fasthttp.StateIdle:
				lim.SetIdle(c, true)
			case fasthttp.StateActive:
				lim.SetIdle(c, false)
			}
		}
	}
	return srv
}

// requestError answers a request that could not be read: 413 for a body, 408 for a slow
// client, 431 for a head too large, else 400; the connection is closed.
func requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		ctx.SetStatusCode(fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &timeout) && timeout.Timeout():
		ctx.SetStatusCode(fasthttp.StatusRequestTimeout)
	default:
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
	}
	ctx.SetConnectionClose()
}

type discard struct{}

func (discard) Printf(string, ...any) {}

// Serve answers on l until Shutdown (through the limiter, when there is one).
func (s *Server) Serve(l net.Listener) error {
	if s.limiter != nil {
		l = s.limiter.Listener(l, nil)
	}
	return s.srv.Serve(l)
}

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
	// Keep-alive and pipelined requests of a client that is not a balancer count against its
	// rate (a connection's first request was counted when it was admitted).
	if s.limiter != nil && ctx.ConnRequestNum() > 1 && !s.limiter.AllowOn(ctx.Conn()) {
		ctx.SetStatusCode(fasthttp.StatusTooManyRequests)
		ctx.SetConnectionClose()
		return
	}
	path := ctx.Path()
	if len(path) > 1 && path[1] != 0 {
		switch {
		case bytes.Equal(path, pathStatus):
			s.ServeStatus(ctx, s.fullStatus(ctx))
			return
		case bytes.Equal(path, pathMetrics) && s.gatherer != nil:
			s.serveMetrics(ctx)
			return
		case bytes.Equal(path, pathLB) && s.lbLine != nil:
			peer := ""
			if ctx.IsGet() {
				peer = ctx.RemoteIP().String()
			}
			ctx.Response.Header.SetContentTypeBytes(textPlain)
			ctx.SetBody(s.lbLine(peer))
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

// fullStatus reports whether the request carries the status token.
func (s *Server) fullStatus(ctx *fasthttp.RequestCtx) bool {
	return s.token != nil && subtle.ConstantTimeCompare(ctx.Request.Header.Peek("Authorization"), s.token) == 1
}

// Answered returns how many plain health answers were 200, 500 and 503.
func (s *Server) Answered() (ok, failed, maintenance uint64) {
	return s.answered[0].Load(), s.answered[1].Load(), s.answered[2].Load()
}
