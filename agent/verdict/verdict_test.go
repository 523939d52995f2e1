package verdict

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/check"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func res(name string, sev check.Severity, st check.Status, msg string) check.Result {
	return check.Result{Name: name, Severity: sev, Status: st, Message: msg}
}

func TestBuild(t *testing.T) {
	const (
		gc = "Global configuration validity"
		db = "Server conf database status"
		sy = "Config sync status"
	)
	pass := func(n string) check.Result { return res(n, check.Critical, check.StatusPass, "") }
	tests := []struct {
		name        string
		maintenance bool
		checks      []check.Result
		state       State
		reason      string
		warning     bool
		code        int
		body        string
	}{
		{"all pass", false, []check.Result{pass(gc), pass(db)}, Healthy, "", false, 200, ""},
		{"no checks", false, nil, Healthy, "", false, 200, ""},
		{"first failure in order wins", false,
			[]check.Result{res(gc, check.Critical, check.StatusFail, "Global configuration is expired"),
				res(db, check.Critical, check.StatusFail, "ServerConf is not available")},
			Unhealthy, "Global configuration is expired", false, 500, "Global configuration is expired\n"},
		{"a later failure", false, []check.Result{pass(gc), res(db, check.Critical, check.StatusFail, "ServerConf is not available")},
			Unhealthy, "ServerConf is not available", false, 500, "ServerConf is not available\n"},
		{"pending is X-Road's not yet completed", false, []check.Result{pass(gc), res(db, check.Critical, check.StatusPending, "")},
			Unhealthy, "Health check not yet completed for: " + db, false, 500, "Health check not yet completed for: " + db + "\n"},
		{"a warning keeps the node healthy", false, []check.Result{pass(gc), res(sy, check.Warning, check.StatusWarn, "primary unreachable")},
			Healthy, "", true, 200, ""},
		{"a pending warning is neither", false, []check.Result{pass(gc), res(sy, check.Warning, check.StatusPending, "")},
			Healthy, "", false, 200, ""},
		{"maintenance wins over a failure", true, []check.Result{res(gc, check.Critical, check.StatusFail, "Global configuration is expired")},
			Maintenance, MaintenanceMessage, false, 503, "Health check interface is in maintenance mode.\n"},
		{"maintenance while healthy", true, []check.Result{pass(gc)},
			Maintenance, MaintenanceMessage, false, 503, "Health check interface is in maintenance mode.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := build(7, t0, "secondary", tt.maintenance, tt.checks)
			if v.State != tt.state || v.Reason != tt.reason || v.Warning != tt.warning {
				t.Errorf("got %s %q warning=%v; want %s %q warning=%v", v.State, v.Reason, v.Warning, tt.state, tt.reason, tt.warning)
			}
			if v.HTTPStatus != tt.code || string(v.HTTPBody) != tt.body {
				t.Errorf("answer %d %q; want %d %q", v.HTTPStatus, v.HTTPBody, tt.code, tt.body)
			}
			if v.Healthy() != (tt.state == Healthy) {
				t.Errorf("Healthy() = %v with state %s", v.Healthy(), v.State)
			}
			if v.Seq != 7 || !v.Time.Equal(t0) || v.Role != "secondary" || v.Maintenance != tt.maintenance {
				t.Errorf("snapshot fields %d %v %q %v", v.Seq, v.Time, v.Role, v.Maintenance)
			}
		})
	}
}

func TestCheckAndSameAnswer(t *testing.T) {
	v := build(1, t0, "primary", false, []check.Result{res("a", check.Critical, check.StatusPass, "")})
	if r, ok := v.Check("a"); !ok || r.Status != check.StatusPass {
		t.Errorf("Check(a) = %+v, %v; want the pass", r, ok)
	}
	if _, ok := v.Check("b"); ok {
		t.Error("Check(b) found a check that does not exist")
	}
	tests := []struct {
		name string
		a, b *Verdict
		want bool
	}{
		{"same state and reason", v, build(2, t0.Add(time.Second), "primary", false, nil), true},
		{"other state", v, build(2, t0, "primary", true, nil), false},
		{"other reason", build(1, t0, "", false, []check.Result{res("a", check.Critical, check.StatusFail, "x")}),
			build(2, t0, "", false, []check.Result{res("a", check.Critical, check.StatusFail, "y")}), false},
		{"nil", v, nil, false},
	}
	for _, tt := range tests {
		if got := SameAnswer(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: SameAnswer = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestStorePublishes(t *testing.T) {
	clk := clockwork.NewFakeClockAt(t0)
	s := NewStoreWithClock("primary", []check.Spec{{Name: "a"}}, clk)
	v0, changed := s.Watch()
	if v0.State != Unhealthy || v0.Reason != "Health check not yet completed for: a" || !v0.Time.Equal(t0) {
		t.Fatalf("first verdict %s %q at %v; want the pending check at %v", v0.State, v0.Reason, v0.Time, t0)
	}
	first := s.AddChecks(check.Spec{Name: "b", Severity: check.Warning}, check.Spec{Name: "c"})
	if first != 1 {
		t.Errorf("AddChecks returned %d; want 1 (after a)", first)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Watch's channel not closed by a publish")
	}
	clk.Advance(time.Minute)
	s.SetResult(0, res("a", check.Critical, check.StatusPass, ""))
	s.SetResult(first+1, res("c", check.Critical, check.StatusPass, ""))
	s.SetResult(9, res("z", check.Critical, check.StatusFail, "ignored")) // out of range: ignored
	s.SetResult(-1, res("z", check.Critical, check.StatusFail, "ignored"))
	v := s.Load()
	if v.State != Healthy || len(v.Checks) != 3 || v.Checks[1].Name != "b" || v.Checks[1].Status != check.StatusPending {
		t.Errorf("verdict %s with %+v; want healthy with a, pending warning b, c", v.State, v.Checks)
	}
	if !v.Time.Equal(t0.Add(time.Minute)) || v.Seq <= v0.Seq {
		t.Errorf("verdict at %v seq %d; want the clock's %v and a seq above %d", v.Time, v.Seq, t0.Add(time.Minute), v0.Seq)
	}
	if v0.State != Unhealthy || len(v0.Checks) != 1 {
		t.Error("an earlier snapshot changed after a publish")
	}
}

func TestStoreMaintenance(t *testing.T) {
	var persisted []bool
	fail := errors.New("disk full")
	var persistErr error
	s := NewStore("standalone", nil)
	s.PersistMaintenance(func(on bool) error { persisted = append(persisted, on); return persistErr })
	tests := []struct {
		on      bool
		err     error
		wantOld bool
	}{
		{true, nil, false},
		{true, nil, true},
		{false, fail, true}, // the switch stands, the error is returned
		{true, nil, false},
	}
	for i, tt := range tests {
		persistErr = tt.err
		old, err := s.SetMaintenance(tt.on)
		if old != tt.wantOld || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("%d: SetMaintenance(%v) = %v, %v; want %v, %v", i, tt.on, old, err, tt.wantOld, tt.err)
		}
		if s.Maintenance() != tt.on || persisted[len(persisted)-1] != tt.on {
			t.Errorf("%d: memory %v, persisted %v; want both %v", i, s.Maintenance(), persisted[len(persisted)-1], tt.on)
		}
	}
	if len(persisted) != len(tests) {
		t.Errorf("persisted %d times; want once per switch (%d)", len(persisted), len(tests))
	}
}

// TestConcurrentSwitchesPersistTheFinalValue: switches racing each other end with the same
// value in memory and persisted (bug 2: the switch and the write were under two locks, and
// two calls could leave memory false, file true).
func TestConcurrentSwitchesPersistTheFinalValue(t *testing.T) {
	for round := 0; round < 200; round++ {
		var mu sync.Mutex
		var last bool
		s := NewStore("standalone", nil)
		s.PersistMaintenance(func(on bool) error {
			runtime.Gosched() // a write takes time: let another switch run meanwhile
			mu.Lock()
			defer mu.Unlock()
			last = on
			return nil
		})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _ = s.SetMaintenance(i%2 == 0)
			}()
		}
		close(start)
		wg.Wait()
		if s.Maintenance() != last {
			t.Fatalf("round %d: memory %v, persisted %v; want the same", round, s.Maintenance(), last)
		}
	}
}
