package confsync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Where this package keeps its own files: nothing of ours lives in the target.
//
//   - <state-dir>/<escaped target>/: lock (one pass at a time), journal (the intent of a
//     commit in progress, see journal.go), racy (see racy.go).
//   - <target's parent>/.<target's name>.lbagent-sync/: the staging area of one pass (same
//     filesystem as the target, so a staged file is renamed into place); it exists only
//     during a pass with changes and is removed on every path, at the latest by the next
//     pass after a crash.

// stateDirFor is the state directory of one target below stateDir: the target's path with
// "/" written as "-" and "-" as "\x2d", as systemd escapes paths ("/etc/xroad" ->
// "etc-xroad").
func stateDirFor(stateDir, target string) string {
	name := strings.ReplaceAll(strings.Trim(target, "/"), "-", `\x2d`)
	return filepath.Join(stateDir, strings.ReplaceAll(name, "/", "-"))
}

// stagingDirFor is the staging area of a target: a hidden sibling directory.
func stagingDirFor(target string) string {
	return filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".lbagent-sync")
}

// state is a target's state directory with its lock file open.
type state struct {
	dir  string
	lock *os.File
}

func openState(dir string) (*state, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("state directory %s is not a directory: %w", dir, ErrUnsafePath)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	return &state{dir: dir, lock: lock}, nil
}

// tryLock takes the target's lock or fails with errLocked.
func (s *state) tryLock(target string) error {
	if err := syscall.Flock(int(s.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("%s: %w", target, errLocked)
	}
	return nil
}

func (s *state) unlock() { _ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN) }

func (s *state) close() error {
	if s == nil {
		return nil
	}
	return s.lock.Close()
}

func (s *state) path(name string) string { return filepath.Join(s.dir, name) }

// errLocked: another pass (another lbagent process) works on the same target.
var errLocked = errors.New("another sync is running on this target")
