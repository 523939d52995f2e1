package verdict

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/xroad-lb/lbkit/agent/check"
)

// Store publishes verdicts. Readers call Load (one atomic load, never blocks); writers
// (the check runner, the admin port) call SetResult and SetMaintenance.
type Store struct {
	now func() time.Time

	mu          sync.Mutex
	seq         uint64
	role        string
	maintenance bool
	results     []check.Result
	changed     chan struct{} // closed and replaced at every publish

	cur atomic.Pointer[Verdict]
}

// NewStore starts with every named check pending.
func NewStore(role string, checks []check.Spec) *Store {
	return NewStoreWithClock(role, checks, time.Now)
}

// NewStoreWithClock is NewStore with an injected clock, for tests.
func NewStoreWithClock(role string, checks []check.Spec, now func() time.Time) *Store {
	s := &Store{now: now, role: role, changed: make(chan struct{})}
	s.results = make([]check.Result, len(checks))
	for i, c := range checks {
		s.results[i] = check.Result{Name: c.Name, Severity: c.Severity, Status: check.StatusPending,
			Message: check.PendingMessage(c.Name)}
	}
	s.publishLocked()
	return s
}

// Load returns the current verdict.
func (s *Store) Load() *Verdict { return s.cur.Load() }

// Watch returns the current verdict and a channel that is closed when a newer one is
// published. Any number of goroutines may watch.
func (s *Store) Watch() (*Verdict, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.Load(), s.changed
}

// SetResult records the latest result of check i.
func (s *Store) SetResult(i int, r check.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.results) {
		return
	}
	s.results[i] = r
	s.publishLocked()
}

// SetMaintenance switches maintenance mode and returns the previous value.
func (s *Store) SetMaintenance(on bool) (old bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old = s.maintenance
	s.maintenance = on
	s.publishLocked()
	return old
}

// Maintenance reports whether maintenance mode is on.
func (s *Store) Maintenance() bool { return s.Load().Maintenance }

func (s *Store) publishLocked() {
	s.seq++
	checks := append([]check.Result(nil), s.results...)
	s.cur.Store(build(s.seq, s.now(), s.role, s.maintenance, checks))
	close(s.changed)
	s.changed = make(chan struct{})
}
