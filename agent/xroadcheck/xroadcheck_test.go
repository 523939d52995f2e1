package xroadcheck

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/xroad-lb/lbkit/agent/check"
)

func TestMemory(t *testing.T) {
	meminfo := filepath.Join(t.TempDir(), "meminfo")
	write := func(s string) {
		if err := os.WriteFile(meminfo, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		content   string
		threshold float64
		wantErr   string // the balancer's message; "" = pass
		detail    string
	}{
		{"MemTotal:       1000 kB\nMemFree: 10 kB\nMemAvailable:    300 kB\n", 80, "", ""},
		{"MemTotal:       1000 kB\nMemAvailable:    150 kB\n", 80, "Memory usage above threshold", "85.0% used, threshold 80.0%"},
		{"MemAvailable:    150 kB\n", 80, "Memory usage above threshold", meminfo + ": no MemTotal"},
	}
	for _, tt := range tests {
		write(tt.content)
		err := Memory(meminfo, tt.threshold)(context.Background())
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%q: got %v; want pass", tt.content, err)
			}
			continue
		}
		var f *check.Failure
		if !errors.As(err, &f) || f.Message != tt.wantErr || f.Cause == nil || f.Cause.Error() != tt.detail {
			t.Errorf("%q: got %v (cause %v); want %q with cause %q", tt.content, err, errors.Unwrap(err), tt.wantErr, tt.detail)
		}
	}
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := TCP("proxy", addr)(context.Background()); err != nil {
		t.Fatalf("listening port: got %v; want pass", err)
	}
	l.Close()
	err = TCP("proxy", addr)(context.Background())
	if err == nil || err.Error() != "proxy port "+addr+" is not accepting connections" {
		t.Fatalf("closed port: got %v", err)
	}
	if TCPName("proxy") != "TCP liveness: proxy" {
		t.Errorf("name %q", TCPName("proxy"))
	}
}

func TestMessages(t *testing.T) {
	if got := MsgOCSPStatus(6); got != "Authentication key OCSP response status 6" {
		t.Errorf("got %q", got)
	}
}
