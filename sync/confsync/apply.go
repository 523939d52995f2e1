package confsync

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
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xroad-lb/lbkit/internal/atomicfile"
)

// fileSource opens a remote file for reading (an *sftp.Client in production).
type fileSource interface {
	Open(p string) (io.ReadCloser, error)
}

// applier carries out a Plan on the target directory in two phases. Stage: every new or
// changed file and symlink is written to the staging area (a sibling of the target on the
// same filesystem), given its final mode, owner and time and flushed with syncfs; nothing
// visible changes. Commit: the intent journal is written and fsynced in the state
// directory, then the steps run (journal.go); a crash at any point is completed by the
// next pass before it reads the tree, an error is rolled back.
type applier struct {
	root      string // cleaned target
	stage     string // this pass's staging directory
	st        *state
	keepOwner bool

	// fsyncEach: a small pass makes its files durable one by one (fsync of each staged file,
	// then of the directories and entries it changed) instead of with syncfs, which
	// would also flush everything else written on the filesystem (PostgreSQL, logs).
	fsyncEach bool

	staged  map[string]string // rel path -> staged file or symlink
	skipped []Skip            // files that could not be read on the primary
	checked map[string]bool   // directories verified to be real directories
}

// newApplier creates a fresh staging directory next to the target (removing one left
// behind by an interrupted process). The caller holds the state's lock.
func newApplier(root string, st *state, keepOwner bool) (*applier, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create target: %w", err)
	}
	stage := stagingDirFor(root)
	if sameFS, err := sameDevice(root, filepath.Dir(stage)); err != nil || !sameFS {
		if err == nil {
			err = fmt.Errorf("%s is a mount point: the staging area %s would be on another filesystem, so files could not be renamed into place: %w", root, stage, ErrBadTarget)
		}
		return nil, err
	}
	if err := os.RemoveAll(stage); err != nil {
		return nil, fmt.Errorf("remove old staging: %w", err)
	}
	err := os.Mkdir(stage, 0o700)
	if err == nil {
		err = os.Mkdir(filepath.Join(stage, "old"), 0o700)
	}
	if err != nil {
		return nil, fmt.Errorf("create staging: %w", err)
	}
	return &applier{root: root, stage: stage, st: st, keepOwner: keepOwner,
		staged: map[string]string{}, checked: map[string]bool{}}, nil
}

// sameDevice reports whether a and b are on the same filesystem.
func sameDevice(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	sa, ok1 := statT(fa)
	sb, ok2 := statT(fb)
	return !ok1 || !ok2 || sa.Dev == sb.Dev, nil
}

// close removes the staging directory (old versions and deleted files go with it).
func (a *applier) close() error {
	return os.RemoveAll(a.stage)
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
	p.drop(a.skipped)
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
	// The data is on disk before anything is renamed into place: each file was fsynced
	// (small passes, then the staging directory, whose entries the journal names), or one
	// syncfs for the whole set.
	if a.fsyncEach && len(p.Symlink) == 0 {
		return atomicfile.SyncDir(a.stage)
	}
	return syncFS(a.stage)
}

// fetchAll downloads files into the staging directory (named prefix + index), parallel
// at a time, and calls done for each (one call at a time).
func (a *applier) fetchAll(ctx context.Context, src fileSource, srcRoot string, files []Entry, prefix string, parallel int, received *int64, done func(e Entry, dst string) error) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
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
				var re *remoteReadError
				if errors.As(err, &re) && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
					// Unreadable or vanished on the primary: skipped, the rest goes on (rsync's
					// exit code 23). The local copy, if any, stays as it is.
					_ = os.Remove(dst)
					a.skipped = append(a.skipped, Skip{Path: e.Path, Reason: re.err.Error()})
					err = nil
					mu.Unlock()
					continue
				}
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("fetch %s: %w", e.Path, err)
				}
				if err == nil {
					testHook("fetch")
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

// remoteReadError is an error of the primary's side (open or read), apart from the
// local ones (writing the staged copy).
type remoteReadError struct{ err error }

func (e *remoteReadError) Error() string { return e.err.Error() }
func (e *remoteReadError) Unwrap() error { return e.err }

// taggedReader marks its read errors as the primary's.
type taggedReader struct{ r io.Reader }

func (t taggedReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if err != nil && err != io.EOF {
		err = &remoteReadError{err}
	}
	return n, err
}

func (a *applier) fetchOne(src fileSource, remote, dst string, e Entry) (int64, error) {
	rf, err := src.Open(remote)
	if err != nil {
		return 0, &remoteReadError{err}
	}
	defer rf.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, taggedReader{rf})
	if err == nil && a.keepOwner {
		err = f.Chown(int(e.UID), int(e.GID)) // before chmod: chown clears setuid bits
	}
	if err == nil {
		err = f.Chmod(e.Mode & permBits)
	}
	if err == nil {
		tv := unix.NsecToTimeval(time.Unix(e.Mtime, 0).UnixNano())
		err = unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv})
	}
	if err == nil && a.fsyncEach {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
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

// smallPass is the most files a pass fsyncs one by one (see applier.fsyncEach).
const smallPass = 32

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
