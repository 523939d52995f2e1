package agentcheck

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newStore(clock *fakeClock) *verdict.Store {
	return verdict.NewStoreWithClock("secondary", []check.Spec{{Name: "Global conf validity"}}, clock.now)
}

func pass(s *verdict.Store) {
	s.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusPass})
}
func fail(s *verdict.Store, msg string) {
	s.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusFail, Message: msg})
}

func TestLineStateMachine(t *testing.T) {
	type step struct {
		do        func(s *verdict.Store, c *fakeClock)
		wantLine  string
		wantPhase string
	}
	healthy := func(s *verdict.Store, _ *fakeClock) { s.SetMaintenance(false); pass(s) }
	maint := func(s *verdict.Store, _ *fakeClock) { s.SetMaintenance(true) }
	unmaint := func(s *verdict.Store, _ *fakeClock) { s.SetMaintenance(false) }
	wait := func(d time.Duration) func(*verdict.Store, *fakeClock) {
		return func(_ *verdict.Store, c *fakeClock) { c.advance(d) }
	}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"pending then healthy, never ready", Config{}, []step{
			{func(*verdict.Store, *fakeClock) {}, "down #Health check not yet completed for: Global conf validity\n", "idle"},
			{healthy, "up\n", "idle"},
			{wait(time.Hour), "up\n", "idle"},
		}},
		{"failure text", Config{}, []step{
			{func(s *verdict.Store, _ *fakeClock) { fail(s, "Global configuration is expired") },
				"down #Global configuration is expired\n", "idle"},
		}},
		{"maintenance drains, lifting says ready for ReadyFor, then nothing", Config{Weight: 50}, []step{
			{healthy, "up 50%\n", "idle"},
			{maint, "drain\n", "announced"},
			{wait(time.Minute), "drain\n", "announced"},
			{unmaint, "up ready 50%\n", "lifting"},
			{wait(9 * time.Second), "up ready 50%\n", "lifting"},
			{wait(time.Second), "up 50%\n", "idle"},
		}},
		{"maint word, failure while lifting keeps ready", Config{MaintenanceWord: "maint", ReadyFor: 4 * time.Second}, []step{
			{healthy, "up\n", "idle"},
			{maint, "maint\n", "announced"},
			{func(s *verdict.Store, _ *fakeClock) { s.SetMaintenance(false); fail(s, "ServerConf is not available") },
				"down ready #ServerConf is not available\n", "lifting"},
			{wait(4 * time.Second), "down #ServerConf is not available\n", "idle"},
		}},
		{"maintenance again while lifting", Config{}, []step{
			{healthy, "up\n", "idle"},
			{maint, "drain\n", "announced"},
			{unmaint, "up ready\n", "lifting"},
			{maint, "drain\n", "announced"},
			{unmaint, "up ready\n", "lifting"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			store := newStore(clock)
			s, err := NewWithClock(tt.cfg, store, func(err error) { t.Error(err) }, clock.now)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				st.do(store, clock)
				if got := string(s.Line()); got != st.wantLine {
					t.Errorf("step %d: line got %q; want %q", i, got, st.wantLine)
				}
				if got := s.Phase(); got != st.wantPhase {
					t.Errorf("step %d: phase got %v; want %v", i, got, st.wantPhase)
				}
			}
		})
	}
}

func TestStateFileLiftsOwnDrainAfterRestart(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	path := filepath.Join(t.TempDir(), "agentcheck.state")
	cfg := Config{StateFile: path}

	store := newStore(clock)
	pass(store)
	store.SetMaintenance(true)
	s, err := NewWithClock(cfg, store, func(err error) { t.Error(err) }, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s.Line()); got != "drain\n" {
		t.Fatalf("got %q; want drain", got)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "drain\n" {
		t.Fatalf("state file got %q, %v; want %q", b, err, "drain\n")
	}

	// Restart: maintenance mode is gone (it is in memory), the announcement is not.
	store2 := newStore(clock)
	pass(store2)
	s2, err := NewWithClock(cfg, store2, func(err error) { t.Error(err) }, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s2.Line()); got != "up ready\n" {
		t.Fatalf("after restart got %q; want %q", got, "up ready\n")
	}
	clock.advance(DefaultReadyFor)
	if got := string(s2.Line()); got != "up\n" {
		t.Fatalf("after ReadyFor got %q; want %q", got, "up\n")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("state file still there after lifting: %v", err)
	}

	// Without a state file of ours, a restart never says ready.
	store3 := newStore(clock)
	pass(store3)
	s3, err := NewWithClock(cfg, store3, nil, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s3.Line()); got != "up\n" {
		t.Fatalf("fresh start got %q; want %q", got, "up\n")
	}
}

func TestBadStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentcheck.state")
	if err := os.WriteFile(path, []byte("sideways\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(0, 0)}
	_, err := NewWithClock(Config{StateFile: path}, newStore(clock), nil, clock.now)
	if err == nil {
		t.Fatal("got nil error; want one naming the state file")
	}
}
