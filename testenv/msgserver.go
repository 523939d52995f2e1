package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// MsgServer stands in for a security server's message port (5500): a TCP server that
// accepts connections, holds them open and echoes what it receives, so tests can watch a
// balancer drain a node. It counts open and accepted connections.
type MsgServer struct {
	Addr string // host:port it listens on

	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// NewMsgServer starts a message server on addr ("127.0.0.2:0" picks a free port) for a test
// and closes it at cleanup.
func NewMsgServer(t testing.TB, addr string) *MsgServer {
	t.Helper()
	return forTest(t, func(context.Context) (*MsgServer, error) { return StartMsgServer(addr) })
}

// StartMsgServer starts a message server on addr.
func StartMsgServer(addr string) (*MsgServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testenv: message server on %s: %w", addr, err)
	}
	m := &MsgServer{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

func (m *MsgServer) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			return
		}
		m.conns[c] = struct{}{}
		m.accepted.Add(1)
		m.wg.Add(1)
		m.mu.Unlock()
		go m.echo(c)
	}
}

func (m *MsgServer) echo(c net.Conn) {
	defer m.wg.Done()
	_, _ = io.Copy(c, c)
	c.Close()
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// Open is the number of connections open right now.
func (m *MsgServer) Open() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.conns)
}

// Accepted is the number of connections accepted since the start.
func (m *MsgServer) Accepted() int64 { return m.accepted.Load() }

// CloseConns closes every open connection (the server keeps listening) and returns how many.
func (m *MsgServer) CloseConns() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.conns {
		c.Close()
	}
	return len(m.conns)
}

// WaitOpen polls until exactly n connections are open or ctx is done.
func (m *MsgServer) WaitOpen(ctx context.Context, n int) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if m.Open() == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: message server %s: %d connections open, want %d: %w", m.Addr, m.Open(), n, ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops listening, closes every connection and waits for its goroutines.
func (m *MsgServer) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	err := m.ln.Close()
	m.CloseConns()
	m.wg.Wait()
	return err
}
