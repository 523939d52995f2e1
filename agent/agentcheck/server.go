package agentcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/xroad-lb/lbkit/agent/verdict"
)

// Timeouts of one agent-check connection.
const (
	writeTimeout = 2 * time.Second
	lingerLimit  = time.Second // how long to wait for the peer to close after our line
	maxActive    = 512         // connections handled at once; more wait in the accept queue
)

// Server answers agent-check connections from a verdict store.
type Server struct {
	cfg     Config
	store   *verdict.Store
	m       *machine
	onError func(error)
	weight  *DynamicWeight
}

// New builds a server for cfg (see LoadConfig). onError, when not nil, receives errors that do
// not stop the server (a state file that cannot be written, a failed accept); it must not block.
func New(cfg Config, store *verdict.Store, onError func(error)) (*Server, error) {
	return NewWithClock(cfg, store, onError, time.Now)
}

// NewWithClock is New with an injected clock, for tests.
func NewWithClock(cfg Config, store *verdict.Store, onError func(error), now func() time.Time) (*Server, error) {
	if cfg.MaintenanceWord == "" {
		cfg.MaintenanceWord = "drain"
	}
	if cfg.MaintenanceWord != "drain" && cfg.MaintenanceWord != "maint" {
		return nil, fmt.Errorf("agent-check: maintenance word %q: want drain or maint", cfg.MaintenanceWord)
	}
	if cfg.ReadyFor <= 0 {
		cfg.ReadyFor = DefaultReadyFor
	}
	if onError == nil {
		onError = func(error) {}
	}
	s := &Server{cfg: cfg, store: store, onError: onError}
	s.m = &machine{word: cfg.MaintenanceWord, readyFor: cfg.ReadyFor, stateFile: cfg.StateFile, now: now}
	switch {
	case cfg.Dynamic.Source != "":
		w, err := NewDynamicWeight(cfg.Dynamic)
		if err != nil {
			return nil, err
		}
		s.weight = w
		s.m.weight = w.Weight
	case cfg.Weight > 0:
		s.m.weight = func() int { return cfg.Weight }
	}
	if err := s.m.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// Line returns the current agent-check line, '\n' included, for the health port's /lb.
// The slice is shared: do not modify it.
func (s *Server) Line() []byte {
	line, err := s.m.line(s.store.Load())
	if err != nil {
		s.onError(err)
	}
	return line
}

// Phase is the state machine's state: idle, announced or lifting (for /status).
func (s *Server) Phase() string {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.phase.String()
}

// Status is what /status shows about the agent-check.
func (s *Server) Status() any {
	return map[string]any{"listen": s.cfg.Listen, "phase": s.Phase(), "line": string(trimNL(s.Line()))}
}

func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// ListenAndServe listens on cfg.Listen and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent-check: listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve answers connections on ln until ctx ends; it closes ln. The dynamic weight sampler,
// when configured, runs alongside.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.weight != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.weight.Run(ctx) }()
	}
	sem := make(chan struct{}, maxActive)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("agent-check: listener closed: %w", err)
			}
			s.onError(fmt.Errorf("agent-check: accept: %w", err))
			select { // e.g. too many open files: back off a little
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.answer(conn)
		}()
	}
}

// answer writes the line and waits briefly for the peer to close first: the peer (HAProxy)
// closes once it has the line, so the TIME_WAIT state stays on its side, and any agent-send
// text it wrote is read, so our close never turns into a reset that could drop the line.
func (s *Server) answer(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(s.Line()); err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Now().Add(lingerLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, 4096))
}
