package agentcheck

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

func newStore(clock clockwork.Clock) *verdict.Store {
	return verdict.NewStoreWithClock("secondary", []check.Spec{{Name: "Global conf validity"}}, clock)
}

func pass(s *verdict.Store) {
	s.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusPass})
}
func fail(s *verdict.Store, msg string) {
	s.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusFail, Message: msg})
}

// Peers of the table tests; "" asks through Status (no peer).
const (
	peerA = "192.0.2.10"
	peerB = "192.0.2.11"
)

func TestLineStateMachine(t *testing.T) {
	type step struct {
		do        func(s *verdict.Store, c *clockwork.FakeClock) // nil: nothing
		peer      string
		wantLine  string
		wantPhase string // after the step
	}
	healthy := func(s *verdict.Store, _ *clockwork.FakeClock) { s.SetMaintenance(false); pass(s) }
	maint := func(s *verdict.Store, _ *clockwork.FakeClock) { pass(s); s.SetMaintenance(true) }
	unmaint := func(s *verdict.Store, _ *clockwork.FakeClock) { s.SetMaintenance(false) }
	wait := func(d time.Duration) func(*verdict.Store, *clockwork.FakeClock) {
		return func(_ *verdict.Store, c *clockwork.FakeClock) { c.Advance(d) }
	}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"pending then healthy, never ready", Config{}, []step{
			{nil, peerA, "down #Health check not yet completed for: Global conf validity\n", "idle"},
			{healthy, peerA, "up\n", "idle"},
			{wait(time.Hour), peerA, "up\n", "idle"},
		}},
		{"failure text", Config{}, []step{
			{func(s *verdict.Store, _ *clockwork.FakeClock) { fail(s, "Global configuration is expired") }, peerA,
				"down #Global configuration is expired\n", "idle"},
		}},
		{"A told drain gets ready once, B never told drain never gets ready", Config{Weight: 50}, []step{
			{healthy, peerA, "up 50%\n", "idle"},
			{healthy, peerB, "up 50%\n", "idle"},
			{maint, peerA, "drain\n", "announced"},
			{wait(time.Minute), peerA, "drain\n", "announced"},
			{unmaint, peerB, "up 50%\n", "lifting"},
			{nil, peerA, "up ready 50%\n", "idle"},
			{nil, peerA, "up 50%\n", "idle"},
			{wait(2 * time.Second), peerA, "up 50%\n", "idle"},
			{wait(2 * time.Second), peerB, "up 50%\n", "idle"},
		}},
		{"operator's drain right after maintenance is never lifted", Config{}, []step{
			{maint, peerA, "drain\n", "announced"},
			{unmaint, peerA, "up ready\n", "idle"},
			// The operator drains now: every later answer must leave it alone.
			{wait(100 * time.Millisecond), peerA, "up\n", "idle"},
			{wait(2 * time.Second), peerA, "up\n", "idle"},
			{wait(2 * time.Second), peerA, "up\n", "idle"},
			{wait(DefaultReadyFor), peerA, "up\n", "idle"},
		}},
		{"a peer that never comes back is owed until ReadyFor", Config{ReadyFor: 30 * time.Second}, []step{
			{maint, peerA, "drain\n", "announced"},
			{unmaint, peerB, "up\n", "lifting"},
			{wait(29 * time.Second), peerB, "up\n", "lifting"},
			{wait(time.Second), peerB, "up\n", "idle"},
			{nil, peerA, "up\n", "idle"},
		}},
		{"maint word, failure while lifting gets ready", Config{MaintenanceWord: "maint"}, []step{
			{healthy, peerA, "up\n", "idle"},
			{maint, peerA, "maint\n", "announced"},
			{func(s *verdict.Store, _ *clockwork.FakeClock) {
				s.SetMaintenance(false)
				fail(s, "ServerConf is not available")
			},
				peerA, "down ready #ServerConf is not available\n", "idle"},
			{nil, peerA, "down #ServerConf is not available\n", "idle"},
		}},
		{"maintenance again while lifting: the owed set grows", Config{}, []step{
			{maint, peerA, "drain\n", "announced"},
			{unmaint, "", "up\n", "lifting"},
			{maint, peerB, "drain\n", "announced"},
			{unmaint, peerA, "up ready\n", "lifting"},
			{nil, peerA, "up\n", "lifting"},
			{nil, peerB, "up ready\n", "idle"},
			{nil, peerB, "up\n", "idle"},
		}},
		{"status neither announces nor takes a ready", Config{}, []step{
			{maint, "", "drain\n", "announced"},
			{unmaint, "", "up\n", "idle"}, // nobody was told drain: nobody is owed
			{maint, peerA, "drain\n", "announced"},
			{unmaint, "", "up\n", "lifting"},
			{nil, "", "up\n", "lifting"},
			{nil, peerA, "up ready\n", "idle"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
			store := newStore(clock)
			s, err := NewWithClock(tt.cfg, store, func(err error) { t.Error(err) }, clock)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				if st.do != nil {
					st.do(store, clock)
				}
				if got := lineFor(s, st.peer); got != st.wantLine {
					t.Errorf("step %d (%s): line got %q; want %q", i, st.peer, got, st.wantLine)
				}
				if got := s.Phase(); got != st.wantPhase {
					t.Errorf("step %d (%s): phase got %v; want %v", i, st.peer, got, st.wantPhase)
				}
			}
		})
	}
}

// lineFor asks as peer, or through Status (with its trailing newline) when peer is "".
func lineFor(s *Server, peer string) string {
	if peer == "" {
		return s.Status().(map[string]any)["line"].(string) + "\n"
	}
	return string(s.Line(peer))
}

func TestStatusShowsOwedPeers(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	store := newStore(clock)
	pass(store)
	s, err := NewWithClock(Config{}, store, func(err error) { t.Error(err) }, clock)
	if err != nil {
		t.Fatal(err)
	}
	store.SetMaintenance(true)
	s.Line(peerB)
	s.Line(peerA)
	store.SetMaintenance(false)
	st := s.Status().(map[string]any)
	if got, _ := st["ready_owed_to"].([]string); !slices.Equal(got, []string{"http:" + peerA, "http:" + peerB}) {
		t.Errorf("ready_owed_to got %v; want [http:%s http:%s] (owed on /lb, kept apart from the agent-check port)", st["ready_owed_to"], peerA, peerB)
	}
	if st["phase"] != "lifting" || st["line"] != "up" {
		t.Errorf("status got %v; want phase lifting, line up", st)
	}
}

func readState(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// restart starts a new server on the same state file, as after a restart of the daemon:
// maintenance mode is gone (it is in memory), the announcement is not.
func restart(t *testing.T, cfg Config, clock *clockwork.FakeClock) *Server {
	t.Helper()
	store := newStore(clock)
	pass(store)
	s, err := NewWithClock(cfg, store, func(err error) { t.Error(err) }, clock)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStateFileLiftsOwnDrainAfterRestart(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	path := filepath.Join(t.TempDir(), "agentcheck.state")
	cfg := Config{StateFile: path}

	store := newStore(clock)
	pass(store)
	store.SetMaintenance(true)
	s, err := NewWithClock(cfg, store, func(err error) { t.Error(err) }, clock)
	if err != nil {
		t.Fatal(err)
	}
	if got := lineFor(s, ""); got != "drain\n" {
		t.Fatalf("status got %q; want drain", got)
	}
	if got, want := readState(t, path), "drain\npeers\n"; got != want {
		t.Fatalf("state file before any peer got %q; want %q", got, want)
	}
	for _, p := range []string{peerB, peerA, peerB} {
		if got := string(s.Line(p)); got != "drain\n" {
			t.Fatalf("%s got %q; want drain", p, got)
		}
	}
	if got, want := readState(t, path), "drain\npeers http:"+peerA+" http:"+peerB+"\n"; got != want {
		t.Fatalf("state file got %q; want %q", got, want)
	}

	s2 := restart(t, cfg, clock)
	const other = "192.0.2.99"
	for i, tt := range []struct{ peer, want, phase string }{
		{other, "up\n", "lifting"}, // never told drain
		{peerA, "up ready\n", "lifting"},
		{peerA, "up\n", "lifting"},
	} {
		if got := string(s2.Line(tt.peer)); got != tt.want || s2.Phase() != tt.phase {
			t.Fatalf("after restart, step %d (%s): got %q, %s; want %q, %s", i, tt.peer, got, s2.Phase(), tt.want, tt.phase)
		}
	}
	if got, want := readState(t, path), "drain\npeers http:"+peerB+"\n"; got != want {
		t.Fatalf("state file got %q; want %q", got, want)
	}

	s3 := restart(t, cfg, clock) // restarted again while lifting: B is still owed
	if got := string(s3.Line(peerA)); got != "up\n" {
		t.Fatalf("A after second restart got %q; want up (A had its ready)", got)
	}
	if got := string(s3.Line(peerB)); got != "up ready\n" || s3.Phase() != "idle" {
		t.Fatalf("B after second restart got %q, %s; want up ready, idle", got, s3.Phase())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("state file still there after lifting: %v", err)
	}

	// Without a state file of ours, a restart never says ready.
	s4 := restart(t, cfg, clock)
	if got := string(s4.Line(peerA)); got != "up\n" {
		t.Fatalf("fresh start got %q; want %q", got, "up\n")
	}
}

func TestStateFileWithoutPeersFallsBackToReadyFor(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	path := filepath.Join(t.TempDir(), "agentcheck.state")
	if err := os.WriteFile(path, []byte("drain\n"), 0o600); err != nil { // an older lbagent's file
		t.Fatal(err)
	}
	cfg := Config{StateFile: path, ReadyFor: 20 * time.Second}
	s := restart(t, cfg, clock)
	for _, p := range []string{peerA, peerB, peerA} { // unknown owed peers: ready to everyone
		if got := string(s.Line(p)); got != "up ready\n" {
			t.Fatalf("%s got %q; want up ready", p, got)
		}
	}
	if got := readState(t, path); got != "drain\n" {
		t.Fatalf("state file got %q; want it unchanged", got)
	}
	clock.Advance(20 * time.Second)
	if got := string(s.Line(peerB)); got != "up\n" || s.Phase() != "idle" {
		t.Fatalf("after ReadyFor got %q, %s; want up, idle", got, s.Phase())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("state file still there after lifting: %v", err)
	}
}

func TestBadStateFile(t *testing.T) {
	for _, content := range []string{"sideways\n", "drain\n127.0.0.1\n"} {
		path := filepath.Join(t.TempDir(), "agentcheck.state")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		clock := clockwork.NewFakeClockAt(time.Unix(0, 0))
		_, err := NewWithClock(Config{StateFile: path}, newStore(clock), nil, clock)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: got %v; want an error naming the state file", content, err)
		}
	}
}

// TestBalancerListAndChannels: with a balancer list, other peers are never told drain as an
// announcement nor given "ready"; and the "ready" owed on the agent-check port is not taken
// by /lb from the same address.
func TestBalancerListAndChannels(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	store := newStore(clock)
	pass(store)
	cfg := Config{Balancers: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}}
	s, err := NewWithClock(cfg, store, func(err error) { t.Error(err) }, clock)
	if err != nil {
		t.Fatal(err)
	}
	store.SetMaintenance(true)
	// The balancer's agent-check (TCP channel) and an attacker's /lb both see drain.
	if l, _ := s.line(s.key("tcp", peerA)); string(l) != "drain\n" {
		t.Fatalf("balancer got %q", l)
	}
	if got := string(s.Line(peerB)); got != "drain\n" {
		t.Fatalf("other peer got %q", got)
	}
	store.SetMaintenance(false)
	// The attacker (not a balancer) gets no ready; /lb from the balancer's own address does not
	// take the agent-check's ready either.
	for _, p := range []string{peerB, peerA, peerA} {
		if got := string(s.Line(p)); got != "up\n" {
			t.Fatalf("/lb from %s got %q; want up without ready", p, got)
		}
	}
	if l, ready := s.line(s.key("tcp", peerA)); string(l) != "up ready\n" || !ready {
		t.Fatalf("the balancer's agent-check got %q; want its ready", l)
	}
}

// TestOwedSetIsBounded: a flood of peers during maintenance cannot grow the owed set; past
// maxOwed the machine owes "ready" to any peer until ReadyFor has passed.
func TestOwedSetIsBounded(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	store := newStore(clock)
	pass(store)
	s, err := NewWithClock(Config{}, store, func(err error) { t.Error(err) }, clock)
	if err != nil {
		t.Fatal(err)
	}
	store.SetMaintenance(true)
	for i := 0; i < 10*maxOwed; i++ {
		s.Line(fmt.Sprintf("10.%d.%d.1", i/256, i%256))
	}
	_, owed, anyone := s.m.snapshot()
	if len(owed) != 0 || !anyone {
		t.Fatalf("owed %d peers, anyone %v; want the set dropped for 'anyone'", len(owed), anyone)
	}
	store.SetMaintenance(false)
	if got := string(s.Line("10.0.0.1")); got != "up ready\n" {
		t.Fatalf("after the flood got %q; want ready for any peer", got)
	}
}
