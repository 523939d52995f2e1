package push_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/push"
	"github.com/xroad-lb/lbkit/agent/verdict"
	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/settings"
	"github.com/xroad-lb/lbkit/testenv"
)

const checkName = "Global conf validity"

func setPass(s *verdict.Store) {
	s.SetResult(0, check.Result{Name: checkName, Status: check.StatusPass})
}
func setFail(s *verdict.Store) {
	s.SetResult(0, check.Result{Name: checkName, Status: check.StatusFail, Message: "Global configuration is expired"})
}

type events struct {
	mu sync.Mutex
	ev []push.Event
}

func (e *events) add(ev push.Event) { e.mu.Lock(); e.ev = append(e.ev, ev); e.mu.Unlock() }
func (e *events) list() []push.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]push.Event(nil), e.ev...)
}

func run(t *testing.T, p *push.Pusher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func waitStatus(t *testing.T, c *haproxy.Client, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var row haproxy.StatRow
	var err error
	for time.Now().Before(deadline) {
		row, err = c.Server(context.Background(), "xroad", "node1")
		if err == nil && (row.Status == want || strings.HasPrefix(row.Status, want+" ")) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("node1 status got %q (%v); want %q within %v", row.Status, err, want, within)
}

func TestPushToRealHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts HAProxy")
	}
	testenv.Require(t, "haproxy")
	msg, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	// A plain TCP check that passes, slow enough (inter 20s × fall 3 = 60s) that only a push
	// can explain a state change within the few seconds the test waits.
	h := testenv.NewHAProxy(t, testenv.HAProxyOptions{Backends: []testenv.HABackend{{Name: "xroad",
		Servers: []testenv.HAServer{{Name: "node1", Addr: msg.Addr().String(),
			Options: "check inter 20s fall 3 rise 2"}}}}})
	client := haproxy.NewClient(h.AdminSocket)
	waitStatus(t, client, "UP", 5*time.Second)

	store := verdict.NewStore("secondary", []check.Spec{{Name: checkName}})
	var ev events
	run(t, push.New(push.Config{Socket: h.AdminSocket, Backend: "xroad", Server: "node1"}, store, ev.add))
	if got := ev.list(); len(got) != 0 {
		t.Fatalf("pushed %+v while checks were pending; want nothing", got)
	}

	setPass(store)
	setFail(store)
	waitStatus(t, client, "DOWN", 5*time.Second)
	setPass(store)
	waitStatus(t, client, "UP", 5*time.Second)
	store.SetMaintenance(true)
	waitStatus(t, client, "DRAIN", 5*time.Second)
	m := len(ev.list())
	store.SetMaintenance(false)
	waitStatus(t, client, "UP", 5*time.Second)
	// HAProxy may show UP before the push that did it is recorded: wait for its event.
	for deadline := time.Now().Add(5 * time.Second); len(ev.list()) == m && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}

	// An operator's maint is left alone: the verdict does not change, nothing is pushed.
	n := len(ev.list())
	if err := client.SetServerState(context.Background(), "xroad", "node1", haproxy.StateMaint); err != nil {
		t.Fatal(err)
	}
	setPass(store) // a new snapshot with the same answer
	waitStatus(t, client, "MAINT", time.Second)
	if got := ev.list(); len(got) != n {
		t.Errorf("pushed %+v for an unchanged verdict; want nothing", got[n:])
	}
	for _, e := range ev.list() {
		if e.Err != nil {
			t.Errorf("push event %+v failed", e)
		}
	}
}

func TestPushReportsUnreachableAndRetries(t *testing.T) {
	store := verdict.NewStore("secondary", []check.Spec{{Name: checkName}})
	setFail(store)
	got := make(chan push.Event, 10)
	sock := filepath.Join(t.TempDir(), "nope.sock")
	run(t, push.New(push.Config{Socket: sock, Backend: "xroad", Server: "node1"}, store,
		func(e push.Event) { got <- e }))
	for i := 0; i < 2; i++ { // the first attempt and one retry
		e := <-got
		if !errors.Is(e.Err, haproxy.ErrUnreachable) || e.State != verdict.Unhealthy {
			t.Fatalf("event %d got %+v; want unhealthy with ErrUnreachable", i, e)
		}
	}
}

// TestPushRetriesAfterBackoff: a failed push is retried only when the backoff's delay has
// passed on the pusher's clock (Min, then twice Min), never before.
func TestPushRetriesAfterBackoff(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(t0)
	store := verdict.NewStore("secondary", []check.Spec{{Name: checkName}})
	setFail(store)
	type attempt struct {
		at  time.Time
		err error
	}
	got := make(chan attempt, 10)
	sock := filepath.Join(t.TempDir(), "nope.sock")
	run(t, push.New(push.Config{Socket: sock, Backend: "xroad", Server: "node1", Clock: clock}, store,
		func(e push.Event) { got <- attempt{clock.Now(), e.Err} }))
	ctx := t.Context()

	next := func(i int, want time.Time) {
		t.Helper()
		a := <-got
		if !errors.Is(a.err, haproxy.ErrUnreachable) || !a.at.Equal(want) {
			t.Fatalf("attempt %d at %v: %v; want ErrUnreachable at %v", i, a.at, a.err, want)
		}
	}
	// waitNoRetry: the pusher waits on its retry timer and has made no attempt.
	waitNoRetry := func(why string) {
		t.Helper()
		// One waiter: the retry timer. Had it fired, the attempt would have been reported
		// before the next timer is set, so it would be in got now.
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-got:
			t.Fatalf("attempt at %v (%v) %s", a.at, a.err, why)
		default:
		}
	}

	minDelay := push.RetryPolicy.Min
	next(0, t0) // the first attempt, at once
	waitNoRetry("before any time passed")
	clock.Advance(minDelay - time.Nanosecond)
	waitNoRetry("before the backoff's first delay passed")
	clock.Advance(time.Nanosecond)
	next(1, t0.Add(minDelay)) // the first retry, Min later
	waitNoRetry("right after the first retry")
	clock.Advance(2*minDelay - time.Nanosecond)
	waitNoRetry("before the backoff's second delay (twice Min) passed")
	clock.Advance(time.Nanosecond)
	next(2, t0.Add(3*minDelay)) // the second retry, twice Min after the first
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		ini  string
		want push.Config
		err  string
	}{
		{"", push.Config{}, ""},
		{"[push]\nhaproxy-socket = /run/haproxy/admin.sock\nbackend = xroad\nserver = node2\n",
			push.Config{Socket: "/run/haproxy/admin.sock", Backend: "xroad", Server: "node2", MaintenanceWord: "drain",
				Timeout: push.DefaultTimeout}, ""},
		{"[agent-check]\nmaintenance-word = maint\n[push]\nhaproxy-socket = ipv4@127.0.0.1:9999\nbackend = b\nserver = s\ntimeout = 1s\n",
			push.Config{Socket: "ipv4@127.0.0.1:9999", Backend: "b", Server: "s", MaintenanceWord: "maint", Timeout: time.Second}, ""},
		{"[push]\nhaproxy-socket = somewhere\n", push.Config{}, `[push] haproxy-socket = "somewhere": want a unix socket path`},
		{"[push]\nhaproxy-socket = /a.sock\nserver = s\n", push.Config{}, `lbagent.ini: [push] backend is not set: want this node's backend name`},
		{"[push]\nhaproxy-socket = /a.sock\nbackend = b\nserver = s\nmaintenance-word = stop\n", push.Config{}, `maintenance-word = "stop": want drain or maint`},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "conf.d", "lbagent.ini"), []byte(tt.ini), 0o644); err != nil {
			t.Fatal(err)
		}
		var got push.Config
		s, err := settings.LoadLbagent(dir)
		if err == nil {
			got, err = push.LoadConfig(s)
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("LoadConfig(%q) error got %v; want %q", tt.ini, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("LoadConfig(%q) got %+v, %v; want %+v", tt.ini, got, err, tt.want)
		}
	}
}
