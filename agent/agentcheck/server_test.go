package agentcheck

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// TestServerOwesReadyPerPeer runs the TCP server on loopback and asks from two source
// addresses: only the peer told drain hears "ready", and only until it has closed the
// connection after reading it (HAProxy closes once it has the line).
func TestServerOwesReadyPerPeer(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	store := newStore(clock)
	pass(store)
	s, err := NewWithClock(Config{}, store, func(err error) { t.Error(err) }, clock)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	// ask connects from the source address from, reads the line and closes, or, with
	// keepOpen, waits for the server to close first.
	ask := func(from string, keepOpen bool) string {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("read from %s: %v", from, err)
		}
		if keepOpen {
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("waiting for the server to close: %v", err)
			}
		}
		return line
	}
	waitPhase := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for s.Phase() != want {
			if time.Now().After(deadline) {
				t.Fatalf("phase got %s; want %s", s.Phase(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	const a, b = "127.0.0.2", "127.0.0.3"
	store.SetMaintenance(true)
	if got := ask(a, false); got != "drain\n" {
		t.Fatalf("A in maintenance got %q; want drain", got)
	}
	store.SetMaintenance(false)
	if got := ask(b, false); got != "up\n" {
		t.Fatalf("B (never told drain) got %q; want up", got)
	}
	if got := ask(a, true); got != "up ready\n" {
		t.Fatalf("A got %q; want up ready", got)
	}
	// A did not close after the line: not known to have it, so still owed.
	if got := ask(a, false); got != "up ready\n" {
		t.Fatalf("A again got %q; want up ready (not confirmed before)", got)
	}
	waitPhase("idle")
	for i := 0; i < 3; i++ {
		if got := ask(a, false); got != "up\n" {
			t.Fatalf("A after its ready, ask %d: got %q; want up", i, got)
		}
	}
	if got := ask(b, false); got != "up\n" {
		t.Fatalf("B got %q; want up", got)
	}
}
