// Package atomicfile replaces files so that a reader, or the system after a crash or power
// loss, sees either the old or the new content, never a mix or an empty file.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// An Option changes how WriteFile creates the file.
type Option func(*options)

type options struct {
	keepMode, keepOwner bool
	chown               bool
	uid, gid            int
}

// KeepMode gives the new file the permission bits of the file it replaces (perm when there
// is none).
func KeepMode() Option { return func(o *options) { o.keepMode = true } }

// KeepOwner gives the new file the owner and group of the file it replaces, when the caller
// runs as root (otherwise, or when there is none, the file is the caller's).
func KeepOwner() Option { return func(o *options) { o.keepOwner = true } }

// Owner gives the new file owner uid and group gid (before its content is written).
func Owner(uid, gid int) Option { return func(o *options) { o.chown, o.uid, o.gid = true, uid, gid } }

// WriteFile replaces path with data: a temporary file in path's directory gets exactly
// perm (the umask does not apply) and the data, is fsynced, renamed over path, and the
// directory is fsynced. On error path is unchanged and the temporary file removed. Errors
// name path.
func WriteFile(path string, data []byte, perm fs.FileMode, opts ...Option) error {
	if err := writeFile(path, data, perm, opts); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, data []byte, perm fs.FileMode, opts []Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ropts := []renameio.Option{renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(perm)}
	if o.keepMode {
		ropts = append(ropts, renameio.WithExistingPermissions())
	}
	if o.keepOwner && os.Geteuid() == 0 {
		fi, err := os.Stat(path)
		switch {
		case err == nil:
			if uid, gid, ok := owner(fi); ok {
				o.chown, o.uid, o.gid = true, uid, gid
			}
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	f, err := renameio.NewPendingFile(path, ropts...)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if o.chown {
		if err := f.Chown(o.uid, o.gid); err != nil {
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Remove removes path (a missing file is no error) and fsyncs its directory, so the
// removal survives a crash.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs directory dir, making the entries created, renamed or removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
