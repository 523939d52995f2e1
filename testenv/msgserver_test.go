package testenv

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"
)

func TestMsgServerHoldsEchoesAndCloses(t *testing.T) {
	m := NewMsgServer(t, "127.0.0.2:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", m.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	if err := m.WaitOpen(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conns[0]).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo: got %q, %v; want %q", line, err, "ping\n")
	}
	conns[1].Close()
	if err := m.WaitOpen(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := m.CloseConns(); got != 2 {
		t.Errorf("CloseConns: got %d; want 2", got)
	}
	if err := m.WaitOpen(ctx, 0); err != nil {
		t.Fatal(err)
	}
	_ = conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err == nil {
		t.Error("read on a connection the server closed succeeded; want EOF")
	}
	if got := m.Accepted(); got != 3 {
		t.Errorf("Accepted: got %d; want 3", got)
	}
}
