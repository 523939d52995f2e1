package connlimit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// listen starts a guarded loopback listener and returns it with the admitted connections.
func listen(t *testing.T, l *Limiter) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := l.Listener(ln, nil)
	t.Cleanup(func() { g.Close() })
	ch := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := g.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return ln.Addr().String(), ch
}

func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused dials from from and reports whether the server refused the connection (a reset
// may come before the dial returns).
func refused(t *testing.T, from, addr string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return errors.Is(err, syscall.ECONNRESET)
	}
	defer c.Close()
	return closedByServer(c)
}

// closedByServer reports whether the server closed (or reset) c.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, syscall.ETIMEDOUT) && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func admitted(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection admitted")
		return nil
	}
}

func TestPerIPCapAndPriority(t *testing.T) {
	balancer := netip.MustParseAddr("127.0.0.9")
	l := New(Limits{Max: 100, PerIP: 2}, func(ip netip.Addr) bool { return ip == balancer })
	addr, ch := listen(t, l)
	for i := 0; i < 2; i++ {
		dialFrom(t, "127.0.0.5", addr)
		admitted(t, ch)
	}
	if !refused(t, "127.0.0.5", addr) {
		t.Fatal("a third connection from one IP was not refused")
	}
	for i := 0; i < 5; i++ { // the balancer has no per-IP cap
		dialFrom(t, "127.0.0.9", addr)
		admitted(t, ch)
	}
	if st := l.Stats(); st.Open != 7 || st.RefusedPerIP != 1 || st.Accepted != 7 {
		t.Fatalf("stats %+v; want 7 open, 7 accepted, 1 refused per IP", st)
	}
}

func TestFullEvictsOldestIdleAndKeepsReserve(t *testing.T) {
	balancer := netip.MustParseAddr("127.0.0.9")
	l := New(Limits{Max: 4, PerIP: 10, Reserved: 1}, func(ip netip.Addr) bool { return ip == balancer })
	addr, ch := listen(t, l)
	var client, server []net.Conn
	for i := 0; i < 3; i++ { // 3 = Max - Reserved: all an ordinary peer may hold
		client = append(client, dialFrom(t, "127.0.0.5", addr))
		server = append(server, admitted(t, ch))
	}
	l.SetIdle(server[1], true) // the oldest idle one
	l.SetIdle(server[2], true)
	dialFrom(t, "127.0.0.6", addr)
	admitted(t, ch)
	if !closedByServer(client[1]) {
		t.Fatal("the oldest idle connection was not closed to make room")
	}
	if st := l.Stats(); st.Open != 3 || st.Evicted != 1 {
		t.Fatalf("stats %+v; want 3 open, 1 evicted", st)
	}
	// No idle connection left of an ordinary peer except server[2]; busy ones are never closed.
	l.SetIdle(server[2], false)
	if !refused(t, "127.0.0.7", addr) {
		t.Fatal("an ordinary peer got past the cap with nothing idle")
	}
	// The balancer still gets the reserved slot.
	dialFrom(t, "127.0.0.9", addr)
	admitted(t, ch)
	if st := l.Stats(); st.Open != 4 || st.RefusedFull != 1 {
		t.Fatalf("stats %+v; want 4 open, 1 refused full", st)
	}
	// Closing gives the place back.
	server[0].Close()
	if st := l.Stats(); st.Open != 3 {
		t.Fatalf("after a close: %d open; want 3", st.Open)
	}
}

// failingListener fails its first accepts with EMFILE, as a process out of descriptors.
type failingListener struct {
	net.Listener
	fails int
}

func (f *failingListener) Accept() (net.Conn, error) {
	if f.fails > 0 {
		f.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

func TestAcceptErrorsAreRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(Limits{Max: 10}, nil)
	var seen []error
	l.OnAcceptError = func(err error) { seen = append(seen, err) }
	g := l.Listener(&failingListener{Listener: ln, fails: 5}, nil)
	defer g.Close()
	c := dialFrom(t, "127.0.0.1", ln.Addr().String())
	sc, err := g.Accept()
	if err != nil {
		t.Fatalf("accept returned %v; want the retries to go on until a connection comes", err)
	}
	sc.Close()
	c.Close()
	if len(seen) != 5 || !errors.Is(seen[0], syscall.EMFILE) || l.Stats().AcceptErrors != 5 {
		t.Fatalf("saw %d errors (%v); want 5 EMFILE, counted", len(seen), seen)
	}
	// Closing the listener ends Accept with net.ErrClosed.
	done := make(chan error)
	go func() { _, err := g.Accept(); done <- err }()
	g.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v; want net.ErrClosed", err)
	}
}

func TestRejectTakesConnectionOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(Limits{Max: 10}, nil)
	g := l.Listener(ln, func(c net.Conn) bool {
		_, _ = c.Write([]byte("no\n"))
		c.Close()
		return true
	})
	defer g.Close()
	go func() { _, _ = g.Accept() }()
	c := dialFrom(t, "127.0.0.1", ln.Addr().String())
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if string(b) != "no\n" || l.Stats().Accepted != 0 {
		t.Fatalf("got %q, %d accepted; want the reject's answer and nothing admitted", b, l.Stats().Accepted)
	}
}

func TestDefaultMaxFollowsNoFile(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	got := DefaultMax()
	want := int(min(max((int64(rl.Cur)-fdReserve)*3/4, minMax), maxMax))
	if got != want || got >= int(rl.Cur) {
		t.Fatalf("DefaultMax %d with RLIMIT_NOFILE %d; want %d, below the limit", got, rl.Cur, want)
	}
}

func TestRatePerIP(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	balancer := netip.MustParseAddr("127.0.0.9")
	l := NewWithClock(Limits{Max: 100, RatePerIP: 10}, func(ip netip.Addr) bool { return ip == balancer },
		clock)
	attacker := netip.MustParseAddr("127.0.0.5")
	allowed := 0
	for i := 0; i < 100; i++ {
		if l.AllowRequest(attacker) {
			allowed++
		}
	}
	if allowed != 10 || l.Stats().RefusedRate != 90 {
		t.Fatalf("allowed %d of 100 at once, %d refused; want the burst of 10", allowed, l.Stats().RefusedRate)
	}
	clock.Advance(500 * time.Millisecond) // half a second refills 5 tokens
	allowed = 0
	for i := 0; i < 100; i++ {
		if l.AllowRequest(attacker) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("allowed %d after 500ms; want 5", allowed)
	}
	for i := 0; i < 1000; i++ {
		if !l.AllowRequest(balancer) {
			t.Fatal("a balancer was rate-limited")
		}
	}
	if off := New(Limits{RatePerIP: -1}, nil); !off.AllowRequest(attacker) || off.rate != nil {
		t.Fatal("RatePerIP < 0 should turn the limit off")
	}
}
