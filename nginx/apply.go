package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/xroad-lb/lbkit/internal/atomicfile"
)

// Lock takes an exclusive lock on path's lock file (path + ".lock"), waiting for other
// lbadapter commands and lbadapter watch, and returns its release.
func Lock(path string) (func(), error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// ReadFile reads and parses the servers file at path; a missing file is an empty one.
func ReadFile(path string) (*File, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read servers file: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("servers file %s: %w", path, err)
	}
	return f, b, nil
}

// Change is a new content for one servers file.
type Change struct {
	Path     string
	Old, New []byte // Old is the file's current content
}

// Apply puts data in the servers file at path (old is its current content), has nginx check
// the whole configuration and reloads nginx gracefully. When nginx -t refuses, the old file is
// put back, nginx is not reloaded, and the *TestError is returned. Unchanged data does
// nothing. The caller holds the Lock.
func (in Instance) Apply(ctx context.Context, path string, old, data []byte) error {
	return in.ApplyAll(ctx, []Change{{Path: path, Old: old, New: data}})
}

// ApplyAll is Apply for several servers files of the same nginx: one nginx -t and one reload
// for all; a refusal puts every file back.
func (in Instance) ApplyAll(ctx context.Context, changes []Change) error {
	var done []Change
	restore := func(err error) error {
		errs := []error{err}
		for _, c := range done {
			if rerr := atomicfile.WriteFile(c.Path, c.Old, 0o644, atomicfile.KeepMode()); rerr != nil {
				errs = append(errs, fmt.Errorf("restore %s: %w", c.Path, rerr))
			}
		}
		return errors.Join(errs...)
	}
	for _, c := range changes {
		if bytes.Equal(c.Old, c.New) {
			continue
		}
		if err := atomicfile.WriteFile(c.Path, c.New, 0o644, atomicfile.KeepMode()); err != nil {
			return restore(err)
		}
		done = append(done, c)
	}
	if len(done) == 0 {
		return nil
	}
	if err := in.Test(ctx); err != nil {
		return restore(err)
	}
	return in.Reload(ctx)
}
