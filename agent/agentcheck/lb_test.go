package agentcheck_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

// TestLBOwesReadyPerClient serves /lb on a loopback health port and asks from two source
// addresses: the health port hands the client's IP to the agent-check, so only the client
// that was told drain hears "ready", once.
func TestLBOwesReadyPerClient(t *testing.T) {
	store := verdict.NewStore("secondary", []check.Spec{{Name: "Global conf validity"}})
	store.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusPass})
	srv, err := agentcheck.New(agentcheck.Config{}, store, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	hp := healthport.New(store, healthport.Options{LBLine: srv.Line})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hp.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hp.Shutdown(ctx)
	})
	get := func(from string) string {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
		resp, err := c.Get("http://" + ln.Addr().String() + healthport.PathLB)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /lb from %s: %d, %v", from, resp.StatusCode, err)
		}
		return string(b)
	}
	const a, b = "127.0.0.2", "127.0.0.3"
	store.SetMaintenance(true)
	if got := get(a); got != "drain\n" {
		t.Fatalf("A in maintenance got %q; want drain", got)
	}
	store.SetMaintenance(false)
	for i, tt := range []struct{ from, want string }{{b, "up\n"}, {a, "up ready\n"}, {a, "up\n"}, {b, "up\n"}} {
		if got := get(tt.from); got != tt.want {
			t.Errorf("step %d, from %s: got %q; want %q", i, tt.from, got, tt.want)
		}
	}
	if p := srv.Phase(); p != "idle" {
		t.Errorf("phase got %s; want idle", p)
	}
}
