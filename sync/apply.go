package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileSource opens a remote file for reading (an *sftp.Client in production).
type fileSource interface {
	Open(p string) (io.ReadCloser, error)
}

// applier carries out a Plan on the target directory in two phases. Stage: every new or
// changed file and symlink is written under <target>/.lbagent-sync/pass-*/ (same
// filesystem), fsynced and given its final mode, owner and time; nothing visible changes.
// Commit: renames into place, with an undo log, so an error rolls every step back.
type applier struct {
	root      string // cleaned target
	stage     string // this pass's staging directory
	keepOwner bool
	lock      *os.File

	staged  map[string]string // rel path -> staged file or symlink
	checked map[string]bool   // directories verified to be real directories
	undo    []func() error
	touched map[string]bool // directories to fsync after commit
}

// errLocked: another pass (another lbagent process) works on the same target.
var errLocked = errors.New("another sync is running on this target")

// newApplier locks the target and creates a fresh staging directory, removing any left
// behind by an interrupted process.
func newApplier(root string, keepOwner bool) (*applier, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create target: %w", err)
	}
	work := filepath.Join(root, stagingName)
	if fi, err := os.Lstat(work); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: %w", work, ErrUnsafePath)
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, fmt.Errorf("create staging: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(work, "lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%s: %w", root, errLocked)
	}
	old, _ := filepath.Glob(filepath.Join(work, "pass-*"))
	for _, o := range old {
		_ = os.RemoveAll(o)
	}
	stage, err := os.MkdirTemp(work, "pass-")
	if err == nil {
		err = os.Mkdir(filepath.Join(stage, "old"), 0o700)
	}
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("create staging: %w", err)
	}
	return &applier{root: root, stage: stage, keepOwner: keepOwner, lock: lock,
		staged: map[string]string{}, checked: map[string]bool{}, touched: map[string]bool{}}, nil
}

// close removes the staging directory (old versions and deleted files go with it).
func (a *applier) close() error {
	err := os.RemoveAll(a.stage)
	a.lock.Close()
	return err
}

// verify fetches the racy files into the staging directory (parallel at a time) and
// compares each with the local copy. It returns the paths whose content differs; their
// staged copies are kept for stageFiles, the others removed. received counts payload bytes.
func (a *applier) verify(ctx context.Context, src fileSource, srcRoot string, files []Entry, parallel int, received *int64) (map[string]bool, error) {
	differs := map[string]bool{}
	err := a.fetchAll(ctx, src, srcRoot, files, "v", parallel, received, func(e Entry, dst string) error {
		local, err := a.path(e.Path)
		if err != nil {
			return err
		}
		same, err := sameContent(dst, local)
		if err != nil {
			return fmt.Errorf("compare %s: %w", e.Path, err)
		}
		if same {
			return os.Remove(dst)
		}
		differs[e.Path] = true
		a.staged[e.Path] = dst
		return nil
	})
	return differs, err
}

// stageFiles downloads every file of the plan (parallel at a time) and creates its symlinks,
// all inside the staging directory; files verify already staged are not fetched again.
// received counts payload bytes.
func (a *applier) stageFiles(ctx context.Context, src fileSource, srcRoot string, p *Plan, parallel int, received *int64) error {
	var fetch []Entry
	for _, e := range p.Fetch {
		if a.staged[e.Path] == "" {
			fetch = append(fetch, e)
		}
	}
	err := a.fetchAll(ctx, src, srcRoot, fetch, "f", parallel, received, func(e Entry, dst string) error {
		a.staged[e.Path] = dst
		return nil
	})
	if err != nil {
		return err
	}
	for i, e := range p.Symlink {
		dst := filepath.Join(a.stage, "l"+strconv.Itoa(i))
		if err := os.Symlink(e.Link, dst); err != nil {
			return fmt.Errorf("stage symlink %s: %w", e.Path, err)
		}
		if a.keepOwner {
			if err := os.Lchown(dst, int(e.UID), int(e.GID)); err != nil {
				return fmt.Errorf("stage symlink %s: %w", e.Path, err)
			}
		}
		a.staged[e.Path] = dst
	}
	// One syncfs for the whole staged set instead of an fsync per file: the data is on
	// disk before anything is renamed into place.
	return syncFS(a.stage)
}

// fetchAll downloads files into the staging directory (named prefix + index), parallel
// at a time, and calls done for each (one call at a time).
func (a *applier) fetchAll(ctx context.Context, src fileSource, srcRoot string, files []Entry, prefix string, parallel int, received *int64, done func(e Entry, dst string) error) error {
	var (
		mu       gosync.Mutex
		firstErr error
		wg       gosync.WaitGroup
		jobs     = make(chan int)
	)
	for range min(max(parallel, 1), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				e := files[i]
				dst := filepath.Join(a.stage, prefix+strconv.Itoa(i))
				n, err := a.fetchOne(src, path.Join(srcRoot, e.Path), dst, e)
				mu.Lock()
				*received += n
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("fetch %s: %w", e.Path, err)
				}
				if err == nil {
					if err := done(e, dst); err != nil && firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range files {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func (a *applier) fetchOne(src fileSource, remote, dst string, e Entry) (int64, error) {
	rf, err := src.Open(remote)
	if err != nil {
		return 0, err
	}
	defer rf.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, rf)
	if err == nil && a.keepOwner {
		err = f.Chown(int(e.UID), int(e.GID)) // before chmod: chown clears setuid bits
	}
	if err == nil {
		err = f.Chmod(e.Mode & permBits)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		t := time.Unix(e.Mtime, 0)
		err = os.Chtimes(dst, t, t)
	}
	return n, err
}

// commit moves the staged set into place. On error every step already taken is undone
// in reverse order and the error says whether the rollback was clean.
func (a *applier) commit(p *Plan) error {
	if err := a.commitSteps(p); err != nil {
		var rb []string
		for i := len(a.undo) - 1; i >= 0; i-- {
			if uerr := a.undo[i](); uerr != nil {
				rb = append(rb, uerr.Error())
			}
		}
		if len(rb) > 0 {
			return fmt.Errorf("%w (rollback incomplete: %s)", err, strings.Join(rb, "; "))
		}
		return fmt.Errorf("%w (rolled back)", err)
	}
	for d := range a.touched {
		_ = syncDir(d)
	}
	return nil
}

func (a *applier) commitSteps(p *Plan) error {
	for i, e := range p.Remove {
		dst, err := a.path(e.Path)
		if err != nil {
			return err
		}
		trash := filepath.Join(a.stage, "old", "r"+strconv.Itoa(i))
		if err := os.Rename(dst, trash); err != nil {
			return fmt.Errorf("delete %s: %w", e.Path, err)
		}
		a.undo = append(a.undo, func() error { return os.Rename(trash, dst) })
		a.touched[filepath.Dir(dst)] = true
	}
	for _, e := range p.Mkdir {
		dst, err := a.path(e.Path)
		if err != nil {
			return err
		}
		if err := os.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", e.Path, err)
		}
		a.undo = append(a.undo, func() error { return os.Remove(dst) })
		a.touched[filepath.Dir(dst)] = true
		if err := a.setAttrs(dst, e, true, true); err != nil {
			return err
		}
	}
	for i, e := range append(append([]Entry{}, p.Fetch...), p.Symlink...) {
		if err := a.place(i, e); err != nil {
			return err
		}
	}
	for _, c := range p.Attrs {
		dst, err := a.path(c.want.Path)
		if err != nil {
			return err
		}
		have := c.have
		a.undo = append(a.undo, func() error { return a.setAttrs(dst, have, c.mode, c.own) })
		if err := a.setAttrs(dst, c.want, c.mode, c.own); err != nil {
			return err
		}
	}
	for _, d := range p.Dirs {
		dst, err := a.path(d.Path)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(dst)
		if err != nil {
			return fmt.Errorf("set time of %s: %w", d.Path, err)
		}
		old := fi.ModTime()
		t := time.Unix(d.Mtime, 0)
		if err := os.Chtimes(dst, t, t); err != nil {
			return fmt.Errorf("set time of %s: %w", d.Path, err)
		}
		a.undo = append(a.undo, func() error { return os.Chtimes(dst, old, old) })
	}
	return nil
}

// place renames one staged file or symlink over its destination, keeping the old version
// (a hard link in the staging directory) for the undo log.
func (a *applier) place(i int, e Entry) error {
	dst, err := a.path(e.Path)
	if err != nil {
		return err
	}
	src := a.staged[e.Path]
	backup := ""
	if fi, err := os.Lstat(dst); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("replace %s: is a directory", e.Path)
		}
		backup = filepath.Join(a.stage, "old", "p"+strconv.Itoa(i))
		if err := os.Link(dst, backup); err != nil {
			return fmt.Errorf("keep old %s: %w", e.Path, err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("rename %s into place: %w", e.Path, err)
	}
	if backup != "" {
		a.undo = append(a.undo, func() error { return os.Rename(backup, dst) })
	} else {
		a.undo = append(a.undo, func() error { return os.Remove(dst) })
	}
	a.touched[filepath.Dir(dst)] = true
	return nil
}

// setAttrs gives dst the entry's owner (own) and permissions (mode); symlinks have no mode.
func (a *applier) setAttrs(dst string, e Entry, mode, own bool) error {
	if own && a.keepOwner {
		if err := os.Lchown(dst, int(e.UID), int(e.GID)); err != nil {
			return fmt.Errorf("chown %s: %w", e.Path, err)
		}
	}
	if mode && e.Mode&fs.ModeSymlink == 0 {
		if err := os.Chmod(dst, e.Mode&permBits); err != nil {
			return fmt.Errorf("chmod %s: %w", e.Path, err)
		}
	}
	return nil
}

// path joins rel to the target after checking it: relative, no "." or ".." components,
// and every parent a real directory inside the target (never a symlink), so no write can
// land outside the target directory.
func (a *applier) path(rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("%q: %w", rel, ErrUnsafePath)
	}
	parts := strings.Split(rel, "/")
	for _, part := range parts {
		if !validName(part) {
			return "", fmt.Errorf("%q: %w", rel, ErrUnsafePath)
		}
	}
	if parts[0] == stagingName {
		return "", fmt.Errorf("%q: %w", rel, ErrUnsafePath)
	}
	dir := a.root
	for _, part := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, part)
		if a.checked[dir] {
			continue
		}
		fi, err := os.Lstat(dir)
		if err != nil {
			return "", fmt.Errorf("%s: %w", rel, err)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s: parent %s is not a directory (symlinks are never followed): %w", rel, dir, ErrUnsafePath)
		}
		a.checked[dir] = true
	}
	return filepath.Join(a.root, filepath.FromSlash(rel)), nil
}

// syncFS flushes the filesystem that holds dir (syncfs(2)).
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
