// Package connlimit guards the listeners that face the balancers' network. An accept error
// never ends a server (descriptor exhaustion backs off and frees an idle connection, as
// net/http backs off); connections are capped globally and per client IP; part of the global
// cap is kept for the balancers; and at the cap the oldest idle connection is closed first.
package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/internal/backoff"
)

// Defaults.
const (
	DefaultPerIP = 16 // connections at once from one client IP that is not a balancer
	minMax       = 64 // the smallest global cap sized from RLIMIT_NOFILE
	maxMax       = 1 << 16
	fdReserve    = 128 // descriptors kept for files, the database, SSH and the admin port
)

// Backoff of a failing accept (net/http uses the same bounds).
var acceptBackoff = backoff.Policy{Min: 5 * time.Millisecond, Max: time.Second}

// Limits are the caps of a Limiter.
type Limits struct {
	Max      int // connections at once over every listener of the limiter; 0 = DefaultMax()
	PerIP    int // connections at once from one IP that is not a priority peer; 0 = DefaultPerIP
	Reserved int // part of Max that only priority peers may use; 0 = Max/8
	// RatePerIP is how many new connections and requests per second one address that is not
	// a priority peer may make; 0 = DefaultRatePerIP, negative = no limit.
	RatePerIP int
}

// DefaultMax sizes the global cap from the open-file limit: three quarters of what is left
// after a reserve for the daemon's own files.
func DefaultMax() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	n := (int64(rl.Cur) - fdReserve) * 3 / 4
	return int(min(max(n, minMax), maxMax))
}

// RaiseNoFile raises the soft open-file limit to the hard one and returns the new soft limit.
func RaiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return rl.Cur, err
		}
	}
	return rl.Cur, nil
}

func (l Limits) withDefaults() Limits {
	if l.Max <= 0 {
		l.Max = DefaultMax()
	}
	if l.PerIP <= 0 {
		l.PerIP = DefaultPerIP
	}
	if l.Reserved <= 0 {
		l.Reserved = max(l.Max/8, 1)
	}
	if l.Reserved >= l.Max {
		l.Reserved = l.Max - 1
	}
	if l.RatePerIP == 0 {
		l.RatePerIP = DefaultRatePerIP
	}
	return l
}

// Stats are the limiter's counters since it was made.
type Stats struct {
	Open         int    // connections open now
	Accepted     uint64 // connections admitted
	RefusedPerIP uint64 // refused: the client IP had PerIP connections
	RefusedFull  uint64 // refused: the global cap was reached and nothing idle could go
	RefusedRate  uint64 // connections or requests refused: the address exceeded RatePerIP
	Evicted      uint64 // idle connections closed to make room
	AcceptErrors uint64 // failed accepts (e.g. too many open files), each retried
}

// Limiter counts the connections of one or more listeners.
type Limiter struct {
	limits   Limits
	priority func(netip.Addr) bool
	rate     *rate // nil: no rate limit
	clock    clockwork.Clock

	mu    sync.Mutex
	open  int
	perIP map[netip.Addr]int
	idle  idleList // idle connections, oldest first

	accepted, refusedPerIP, refusedFull, refusedRate, evicted, acceptErrors atomic.Uint64

	// OnAcceptError, when set, is told of every failed accept (it must not block).
	OnAcceptError func(error)
}

// New returns a limiter. priority reports the balancers' addresses (nil: none); they are not
// capped per IP and may use the reserved part of the global cap.
func New(l Limits, priority func(netip.Addr) bool) *Limiter {
	return NewWithClock(l, priority, clockwork.NewRealClock())
}

// NewWithClock is New with an injected clock (the rate limit, the wait before an accept is
// retried), for tests.
func NewWithClock(l Limits, priority func(netip.Addr) bool, clock clockwork.Clock) *Limiter {
	if priority == nil {
		priority = func(netip.Addr) bool { return false }
	}
	lim := &Limiter{limits: l.withDefaults(), priority: priority, perIP: map[netip.Addr]int{}, clock: clock}
	if lim.limits.RatePerIP > 0 {
		lim.rate = newRate(lim.limits.RatePerIP, clock)
	}
	return lim
}

// AllowRequest reports whether the client at ip may make one more request now (a priority
// peer always may); servers call it for every request after the first on a connection (the
// connection's admission counted the first).
func (l *Limiter) AllowRequest(ip netip.Addr) bool {
	if l.rate == nil || l.priority(ip) {
		return true
	}
	if l.rate.allow(ip) {
		return true
	}
	l.refusedRate.Add(1)
	return false
}

// Limits returns the caps in force.
func (l *Limiter) Limits() Limits { return l.limits }

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	open := l.open
	l.mu.Unlock()
	return Stats{Open: open, Accepted: l.accepted.Load(), RefusedPerIP: l.refusedPerIP.Load(),
		RefusedFull: l.refusedFull.Load(), RefusedRate: l.refusedRate.Load(), Evicted: l.evicted.Load(), AcceptErrors: l.acceptErrors.Load()}
}

// AllowOn is AllowRequest for the client of c, a connection of this limiter (others are
// always allowed).
func (l *Limiter) AllowOn(c net.Conn) bool {
	cc, ok := c.(*Conn)
	if !ok || cc.l != l || cc.balancer || l.rate == nil {
		return true // a balancer's requests are never counted: no look-up on its hot path
	}
	if l.rate.allow(cc.ip) {
		return true
	}
	l.refusedRate.Add(1)
	return false
}

// Priority reports whether ip is a priority peer (a balancer).
func (l *Limiter) Priority(ip netip.Addr) bool { return l.priority(ip.Unmap()) }

// Listener wraps ln. Accept returns only admitted connections and only the listener's own
// close as an error. reject, when not nil, sees every new connection first: it returns true
// when it took the connection over (answered and closed it), e.g. the admin port's 403.
func (l *Limiter) Listener(ln net.Listener, reject func(net.Conn) bool) net.Listener {
	return &listener{Listener: ln, l: l, reject: reject, closed: make(chan struct{})}
}

type listener struct {
	net.Listener
	l         *Limiter
	reject    func(net.Conn) bool
	closeOnce sync.Once
	closed    chan struct{}
}

func (ln *listener) Close() error {
	ln.closeOnce.Do(func() { close(ln.closed) })
	return ln.Listener.Close()
}

func (ln *listener) Accept() (net.Conn, error) {
	retries := backoff.Backoff{Policy: acceptBackoff}
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			select {
			case <-ln.closed:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			ln.l.acceptErrors.Add(1)
			if ln.l.OnAcceptError != nil {
				ln.l.OnAcceptError(err)
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				ln.l.evictOldest() // a descriptor for the connection waiting in the queue
			}
			wait := ln.l.clock.NewTimer(retries.Fail())
			select {
			case <-wait.Chan():
			case <-ln.closed:
				wait.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		retries.Reset()
		if ln.reject != nil && ln.reject(c) {
			continue
		}
		if conn := ln.l.admit(c); conn != nil {
			return conn, nil
		}
	}
}

// admit counts c in, or closes it (with a reset, so no TIME_WAIT stays here) and returns nil.
func (l *Limiter) admit(c net.Conn) net.Conn {
	ip := addrOf(c.RemoteAddr())
	prio := l.priority(ip)
	if !prio && l.rate != nil && !l.rate.allow(ip) {
		l.refusedRate.Add(1)
		reset(c)
		return nil
	}
	l.mu.Lock()
	if !prio && l.perIP[ip] >= l.limits.PerIP {
		l.mu.Unlock()
		l.refusedPerIP.Add(1)
		reset(c)
		return nil
	}
	limit := l.limits.Max
	if !prio {
		limit -= l.limits.Reserved
	}
	var victim *Conn
	if l.open >= limit {
		victim = l.idle.oldest(prio)
		if victim == nil {
			l.mu.Unlock()
			l.refusedFull.Add(1)
			reset(c)
			return nil
		}
		l.releaseLocked(victim)
	}
	l.open++
	l.perIP[ip]++
	l.mu.Unlock()
	if victim != nil {
		l.evicted.Add(1)
		reset(victim.Conn)
	}
	l.accepted.Add(1)
	return &Conn{Conn: c, l: l, ip: ip, balancer: prio}
}

// evictOldest closes the oldest idle connection, if there is one.
func (l *Limiter) evictOldest() {
	l.mu.Lock()
	victim := l.idle.oldest(true)
	if victim != nil {
		l.releaseLocked(victim)
	}
	l.mu.Unlock()
	if victim != nil {
		l.evicted.Add(1)
		reset(victim.Conn)
	}
}

// releaseLocked takes c out of the counts, once.
func (l *Limiter) releaseLocked(c *Conn) {
	if c.released {
		return
	}
	c.released = true
	if c.inIdle {
		l.idle.remove(c)
	}
	l.open--
	if n := l.perIP[c.ip] - 1; n > 0 {
		l.perIP[c.ip] = n
	} else {
		delete(l.perIP, c.ip)
	}
}

// SetIdle marks a connection of this limiter idle (waiting for a request: it may be closed to
// make room) or busy. Other connections are ignored. Servers call it from their
// connection-state hook.
func (l *Limiter) SetIdle(nc net.Conn, idle bool) {
	c, ok := nc.(*Conn)
	if !ok || c.l != l {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released || c.inIdle == idle {
		return
	}
	if idle {
		c.prio = c.balancer
		l.idle.push(c)
	} else {
		l.idle.remove(c)
	}
}

// Conn is an admitted connection; Close gives its place back.
type Conn struct {
	net.Conn
	l        *Limiter
	ip       netip.Addr
	balancer bool // a priority peer, decided at admission

	// guarded by l.mu
	released, inIdle, prio bool
	prev, next             *Conn
}

// Close closes the connection and gives its place back.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// IP is the client's address.
func (c *Conn) IP() netip.Addr { return c.ip }

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// reset closes c at once with a reset: the refused or evicted client learns it now, and no
// TIME_WAIT state is left on this side.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// idleList is a doubly linked list of idle connections, oldest at the head.
type idleList struct{ head, tail *Conn }

func (q *idleList) push(c *Conn) {
	c.inIdle, c.prev, c.next = true, q.tail, nil
	if q.tail != nil {
		q.tail.next = c
	} else {
		q.head = c
	}
	q.tail = c
}

func (q *idleList) remove(c *Conn) {
	if !c.inIdle {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		q.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		q.tail = c.prev
	}
	c.inIdle, c.prev, c.next = false, nil, nil
}

// oldest returns the oldest idle connection of a peer that is not a balancer, or, when
// anyPeer is set and there is none, the oldest idle connection of a balancer.
func (q *idleList) oldest(anyPeer bool) *Conn {
	for c := q.head; c != nil; c = c.next {
		if !c.prio {
			return c
		}
	}
	if anyPeer {
		return q.head
	}
	return nil
}
