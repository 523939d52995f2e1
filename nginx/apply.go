package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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
			if rerr := writeAtomic(c.Path, c.Old); rerr != nil {
				errs = append(errs, fmt.Errorf("restore %s: %w", c.Path, rerr))
			}
		}
		return errors.Join(errs...)
	}
	for _, c := range changes {
		if bytes.Equal(c.Old, c.New) {
			continue
		}
		if err := writeAtomic(c.Path, c.New); err != nil {
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

// writeAtomic replaces path with data: a temporary file in the same directory, synced,
// renamed over path, and the directory synced. The file keeps path's mode (0644 when new).
func writeAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
