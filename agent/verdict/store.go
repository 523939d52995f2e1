package verdict

import (
	"sync"
	"sync/atomic"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/check"
)

// Store publishes verdicts. Readers call Load (one atomic load, never blocks); writers
// (the check runner, the admin port) call SetResult and SetMaintenance.
type Store struct {
	clock clockwork.Clock

	// switching serialises maintenance switches with their persisting, so the persisted
	// value always ends as the value in memory; persist is called with it held.
	switching sync.Mutex
	persist   func(on bool) error

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
	return NewStoreWithClock(role, checks, clockwork.NewRealClock())
}

// NewStoreWithClock is NewStore with an injected clock, for tests.
func NewStoreWithClock(role string, checks []check.Spec, clock clockwork.Clock) *Store {
	s := &Store{clock: clock, role: role, changed: make(chan struct{})}
	s.results = make([]check.Result, len(checks))
	for i, c := range checks {
		s.results[i] = pending(c)
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

// AddChecks appends pending results for specs (in this order, after the checks already
// there) and returns the index of the first, for SetResult. Add every check before the
// runner starts.
func (s *Store) AddChecks(specs ...check.Spec) (first int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first = len(s.results)
	for _, c := range specs {
		s.results = append(s.results, pending(c))
	}
	s.publishLocked()
	return first
}

func pending(c check.Spec) check.Result {
	return check.Result{Name: c.Name, Severity: c.Severity, Status: check.StatusPending,
		Message: check.PendingMessage(c.Name)}
}

// PersistMaintenance makes every later SetMaintenance call persist with the switched value
// (a state file), under the same lock as the switch. Call before the store is shared.
func (s *Store) PersistMaintenance(persist func(on bool) error) {
	s.switching.Lock()
	defer s.switching.Unlock()
	s.persist = persist
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

// SetMaintenance switches maintenance mode and returns the previous value. With a persist
// function (PersistMaintenance), it persists on before another switch may start, so
// concurrent switches end with the same value in memory and persisted; an error of persist
// is returned (the switch in memory stands: X-Road's own maintenance mode lives in memory).
func (s *Store) SetMaintenance(on bool) (old bool, err error) {
	s.switching.Lock()
	defer s.switching.Unlock()
	s.mu.Lock()
	old = s.maintenance
	s.maintenance = on
	s.publishLocked()
	s.mu.Unlock()
	if s.persist != nil {
		err = s.persist(on)
	}
	return old, err
}

// Maintenance reports whether maintenance mode is on.
func (s *Store) Maintenance() bool { return s.Load().Maintenance }

func (s *Store) publishLocked() {
	s.seq++
	checks := append([]check.Result(nil), s.results...)
	s.cur.Store(build(s.seq, s.clock.Now(), s.role, s.maintenance, checks))
	close(s.changed)
	s.changed = make(chan struct{})
}
