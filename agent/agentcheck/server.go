package agentcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/connlimit"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

// Timeouts of one agent-check connection.
const (
	writeTimeout = 2 * time.Second
	lingerLimit  = time.Second // how long to wait for a balancer to close after our line
	// lingerOther is the wait for a peer that is not a listed balancer: it is owed nothing,
	// so its connection is given back almost at once.
	lingerOther = 50 * time.Millisecond
)

// Server answers agent-check connections from a verdict store.
type Server struct {
	cfg     Config
	store   *verdict.Store
	m       *machine
	onError func(error)
	weight  *DynamicWeight
	limiter *connlimit.Limiter
}

// SetLimiter caps the port's connections with lim (shared with the health port); call before
// Serve. Without one, connections are capped per IP by a limiter of the port's own.
func (s *Server) SetLimiter(lim *connlimit.Limiter) { s.limiter = lim }

// New builds a server for cfg (see LoadConfig). onError, when not nil, receives errors that do
// not stop the server (a state file that cannot be written, a failed accept); it must not block.
func New(cfg Config, store *verdict.Store, onError func(error)) (*Server, error) {
	return NewWithClock(cfg, store, onError, clockwork.NewRealClock())
}

// NewWithClock is New with an injected clock, for tests.
func NewWithClock(cfg Config, store *verdict.Store, onError func(error), clock clockwork.Clock) (*Server, error) {
	st, err := OpenState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	return NewWithState(cfg, st, store, onError, clock)
}

// NewWithState is NewWithClock with the state file already open (OpenState): the daemon
// opens it once and shares it with push, so each keeps its part of the one file.
func NewWithState(cfg Config, st *State, store *verdict.Store, onError func(error), clock clockwork.Clock) (*Server, error) {
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
	s.m = &machine{word: cfg.MaintenanceWord, readyFor: cfg.ReadyFor, st: st, clock: clock}
	switch {
	case cfg.Dynamic.Source != "":
		w, err := NewDynamicWeightWithClock(cfg.Dynamic, clock)
		if err != nil {
			return nil, err
		}
		s.weight = w
		s.m.weight = w.Weight
	case cfg.Weight > 0:
		s.m.weight = func() int { return cfg.Weight }
	}
	s.m.restore()
	return s, nil
}

// Line returns the agent-check line for peer, '\n' included, for the health port's /lb: peer
// is the remote IP of the HTTP client (see Peer). A "ready" owed to peer counts as delivered
// with this line. The slice is shared: do not modify it.
//
// The "ready" owed on /lb and on the agent-check port are kept apart: a GET of /lb from a
// balancer's address never takes the "ready" that its agent-check is owed. Peers that are not
// listed balancers (when a list is given) are neither told drain as an announcement nor given
// "ready".
func (s *Server) Line(peer string) []byte {
	key := s.key("http", peer)
	line, ready := s.line(key)
	if ready {
		s.delivered(key)
	}
	return line
}

// key is the owed-set key of peer on channel ("tcp" or "http"), or "" when peer is not a
// balancer (and so owed nothing).
func (s *Server) key(channel, peer string) string {
	if peer == "" {
		return ""
	}
	if len(s.cfg.Balancers) > 0 {
		ip, err := netip.ParseAddr(peer)
		if err != nil || !s.cfg.IsBalancer(ip) {
			return ""
		}
	}
	if channel == "tcp" {
		return peer // as in state files written before /lb had its own set
	}
	return channel + ":" + peer
}

// line returns the line for peer and whether it carries a "ready" owed to peer.
func (s *Server) line(peer string) ([]byte, bool) {
	line, ready, err := s.m.line(s.store.Load(), peer)
	if err != nil {
		s.onError(err)
	}
	return line, ready
}

func (s *Server) delivered(peer string) {
	if err := s.m.delivered(peer); err != nil {
		s.onError(err)
	}
}

// Phase is the state machine's state: idle, announced or lifting (for /status).
func (s *Server) Phase() string {
	p, _, _ := s.m.snapshot()
	return p.String()
}

// Status is what /status shows about the agent-check: the phase, the line as a peer that is
// owed nothing gets it, and the peers still owed "ready" ("owed_to_any_peer" after a restart
// from a state file that does not name them). It neither announces nor delivers anything.
func (s *Server) Status() any {
	line, _, err := s.m.line(s.store.Load(), "")
	if err != nil {
		s.onError(err)
	}
	p, owed, anyone := s.m.snapshot()
	listen := s.cfg.Listen
	if listen == "" {
		listen = "off" // the port is closed; /lb answers the line
	}
	st := map[string]any{"listen": listen, "phase": p.String(), "line": string(trimNL(line))}
	if len(owed) > 0 {
		st["ready_owed_to"] = owed
	}
	if anyone {
		st["ready_owed_to_any_peer"] = true
	}
	return st
}

// Peer is the key under which a connection's peer is owed "ready": the IP of addr without
// its port (HAProxy's agent checks come from ever new ports), or addr itself if it has no IP.
func Peer(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		return host
	}
	return addr.String()
}

func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// Sample runs the dynamic weight sampler, when one is configured, until ctx ends: for /lb when
// the agent-check port is off (Serve runs it otherwise).
func (s *Server) Sample(ctx context.Context) error {
	if s.weight != nil {
		s.weight.Run(ctx)
	}
	return nil
}

// ListenAndServe listens on cfg.Listen and serves until ctx ends. As Serve's, its errors
// do not name the agent-check: the caller names its services.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return err // "listen tcp ADDR: ..." names the address
	}
	return s.Serve(ctx, ln)
}

// Serve answers connections on ln until ctx ends; it closes ln. The dynamic weight sampler,
// when configured, runs alongside. Its errors do not name the agent-check: the daemon names
// the service that failed ("agent-check: listener closed: ...").
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
	lim := s.limiter
	if lim == nil {
		lim = connlimit.New(connlimit.Limits{}, func(ip netip.Addr) bool {
			return len(s.cfg.Balancers) > 0 && s.cfg.IsBalancer(ip)
		})
	}
	// The limiter caps the connections and retries failed accepts (too many open files)
	// with a backoff; the accept loop itself never waits for a slot.
	guarded := lim.Listener(ln, nil)
	for {
		conn, err := guarded.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("listener closed: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.answer(conn)
		}()
	}
}

// answer writes the line and waits briefly for the peer to close first: the peer (HAProxy)
// closes once it has the line, so the TIME_WAIT state stays on its side, and any agent-send
// text it wrote is read, so our close never turns into a reset that could drop the line.
// A "ready" owed to the peer counts as delivered only when the peer closed (or reset) the
// connection after our line; otherwise it is owed again on the next connection.
func (s *Server) answer(conn net.Conn) {
	defer conn.Close()
	peer := s.key("tcp", Peer(conn.RemoteAddr()))
	line, ready := s.line(peer)
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(line); err != nil {
		return
	}
	linger := lingerLimit
	if peer == "" {
		linger = lingerOther
	}
	_ = conn.SetReadDeadline(time.Now().Add(linger))
	_, err := io.Copy(io.Discard, io.LimitReader(conn, 4096))
	if ready && !errors.Is(err, os.ErrDeadlineExceeded) {
		s.delivered(peer)
	}
}
