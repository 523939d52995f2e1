package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/internal/atomicfile"
)

// DefaultStatePath is where the checkpoint is kept without --state.
const DefaultStatePath = "/var/lib/lbadapter/upgrade-state.json"

// stateVersion is the format of the state file.
const stateVersion = 1

// State is the checkpoint of a run: the plan with every step's outcome, written after every
// step.
type State struct {
	Format   int               `json:"format"`
	Config   string            `json:"config"` // the cluster config's path
	Options  Options           `json:"options"`
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished,omitzero"`
	Before   map[string]string `json:"before"` // X-Road version per node at the start
	After    map[string]string `json:"after"`
	Steps    []Step            `json:"steps"`
}

// Next is the index of the first step not done, or len(Steps).
func (s *State) Next() int {
	for i, st := range s.Steps {
		if st.Status != Done {
			return i
		}
	}
	return len(s.Steps)
}

// Complete reports whether every step is done.
func (s *State) Complete() bool { return s.Next() == len(s.Steps) }

// ErrNoState is returned by LoadState when there is no state file.
var ErrNoState = errors.New("no unfinished upgrade")

// LoadState reads the state file.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s)", ErrNoState, path)
	}
	if err != nil {
		return nil, fmt.Errorf("upgrade state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("upgrade state %s: not a state file of lbadapter upgrade (%w)", path, err)
	}
	if s.Format != stateVersion || len(s.Steps) == 0 {
		return nil, fmt.Errorf("upgrade state %s: not a state file of this lbadapter (format %d)", path, s.Format)
	}
	return &s, nil
}

// Save writes the state file atomically (internal/atomicfile: a temporary file beside it,
// fsync, rename, fsync of the directory).
func (s *State) Save(path string) error {
	s.Format = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("upgrade state: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("upgrade state: %w", err)
	}
	return nil
}

// Lock takes an exclusive lock beside the state file (path.lock) so that two runs never
// work on one cluster at once; unlock releases it.
func Lock(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("upgrade state: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("upgrade lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another lbadapter upgrade is running on %s (lock %s.lock)", path, path)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
