package confsync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// remoteCache keeps the primary's listing between passes so that an idle pass costs one
// SFTP LSTAT per directory instead of listing every file. Adding, removing or renaming an
// entry moves its directory's mtime, so a directory whose mtime moved is listed again,
// with everything below it. A file rewritten in place (or chmod-ed) moves no directory's
// time: the full listing every fullEvery is what notices it.
//
// SFTP v3 times have one-second resolution, so two changes within the second a directory
// was listed in leave its mtime as listed. A directory is therefore listed again on every
// pass while its mtime is less than settle before the time it was listed (the primary's
// and this node's clocks are assumed to agree within settle minus one second).
//
// Racy files (see racy.go) are stat-ed on every pass, whether or not their directory is
// listed again: a file rewritten in place moves no directory's time.
type remoteCache struct {
	tree      Tree
	gen       uint64             // counts the trees returned (never reused, not even after invalidate)
	dirs      map[string]dirMark // "" = the source directory itself
	full      time.Time          // when the last full listing started (this node's clock)
	fullEvery time.Duration
	settle    time.Duration
}

// dirMark is what a directory looked like when it was last listed.
type dirMark struct {
	mtime  int64 // seconds, seen before the listing
	listed int64 // unix seconds (this node's clock) when the pass that listed it started
}

// remoteSettle is how long after its last change a directory keeps being listed.
const remoteSettle = 3 * time.Second

// listStats says how much of the primary a pass listed.
type listStats struct {
	full  bool   // the whole tree was listed
	dirs  int    // directories listed (READDIR)
	stats int    // directories and racy files only checked (LSTAT)
	gen   uint64 // changes whenever the returned tree is not the one returned before
}

// list returns the primary's tree (after excludes): a full listing when due, otherwise
// the cached tree with the directories that changed listed again and the racy files
// stat-ed again. The returned tree must not be modified. On error the cache is dropped
// (the next pass lists everything).
//
// hints are paths the primary reported changed (notify.go): their directories are listed
// again whatever their time says (a file rewritten in place moves no directory's time).
func (c *remoteCache) list(ctx context.Context, fsys remoteFS, root string, ex *Excludes, parallel int, now time.Time, racy map[string]bool, hints ...string) (Tree, listStats, error) {
	t, st, err := c.update(ctx, fsys, root, ex, parallel, now, racy, hints)
	if err != nil {
		c.invalidate()
		return nil, st, err
	}
	return t, st, nil
}

func (c *remoteCache) update(ctx context.Context, fsys remoteFS, root string, ex *Excludes, parallel int, now time.Time, racy map[string]bool, hints []string) (Tree, listStats, error) {
	sec := now.Unix()
	if c.tree == nil || now.Sub(c.full) >= c.fullEvery || now.Before(c.full) {
		fi, err := fsys.Stat(root)
		if err != nil {
			return nil, listStats{}, fmt.Errorf("stat remote directory %s: %w", root, err)
		}
		t, n, err := walkRemote(ctx, fsys, root, []string{""}, ex, parallel)
		if err != nil {
			return nil, listStats{}, err
		}
		c.tree, c.full = t, now
		c.gen++
		c.dirs = map[string]dirMark{"": {mtime: fi.ModTime().Unix(), listed: sec}}
		c.markDirs(t, sec)
		return t, listStats{full: true, dirs: n, gen: c.gen}, nil
	}

	// Check every known directory and racy file; collect the directories to list again.
	paths := make([]string, 0, len(c.dirs)+len(racy))
	for rel := range c.dirs {
		paths = append(paths, rel)
	}
	for rel := range racy {
		if _, ok := c.dirs[rel]; !ok && c.tree[rel].Mode.IsRegular() {
			paths = append(paths, rel)
		}
	}
	seen, err := statPaths(fsys, root, paths, len(c.dirs), parallel)
	if err != nil {
		return nil, listStats{}, err
	}
	st := listStats{stats: len(paths)}
	settle := int64(c.settle / time.Second)
	dirty := map[string]int64{} // directory -> mtime seen before listing it
	attrs := map[string]Entry{} // directories and racy files whose attributes changed
	for _, rel := range paths[len(c.dirs):] {
		fi := seen[rel]
		if fi == nil || !fi.Mode().IsRegular() {
			// Gone or no longer a file: its directory changed too; list it.
			p := parentDir(rel)
			if _, ok := dirty[p]; !ok {
				dirty[p] = mtimeOf(seen[p])
			}
			continue
		}
		if e := entryFromRemote(rel, fi); e != c.tree[rel] {
			attrs[rel] = e
		}
	}
	for rel, mark := range c.dirs {
		fi := seen[rel]
		if fi == nil || !fi.IsDir() {
			// Gone or no longer a directory: its parent changed too; list the parent.
			p := parentDir(rel)
			if _, ok := dirty[p]; !ok {
				dirty[p] = mtimeOf(seen[p])
			}
			continue
		}
		m := fi.ModTime().Unix()
		if m != mark.mtime || m >= mark.listed-settle {
			dirty[rel] = m
		}
		if rel != "" {
			if e, old := entryFromRemote(rel, fi), c.tree[rel]; e != old {
				attrs[rel] = e
			}
		}
	}
	for _, h := range hints {
		// The nearest known directory holding the changed path ("" = the top).
		d := parentDir(h)
		for d != "" {
			if _, ok := c.dirs[d]; ok {
				break
			}
			d = parentDir(d)
		}
		if _, ok := dirty[d]; !ok {
			dirty[d] = mtimeOf(seen[d])
		}
	}
	if len(dirty) == 0 && len(attrs) == 0 {
		st.gen = c.gen
		return c.tree, st, nil
	}
	// Only the topmost dirty directories are walked (a walk covers what is below).
	var tops []string
	for d := range dirty {
		if !under(d, dirty) {
			tops = append(tops, d)
		}
	}
	sub, n, err := walkRemote(ctx, fsys, root, tops, ex, parallel)
	if err != nil {
		return nil, st, err
	}
	st.dirs = n
	t := make(Tree, len(c.tree)+len(sub))
	for rel, e := range c.tree {
		if !below(rel, tops) {
			t[rel] = e
		}
	}
	for rel, e := range attrs {
		if _, ok := t[rel]; ok {
			t[rel] = e
		}
	}
	for rel, e := range sub {
		t[rel] = e
	}
	for rel := range c.dirs {
		if below(rel, tops) {
			delete(c.dirs, rel)
		}
	}
	for _, d := range tops {
		c.dirs[d] = dirMark{mtime: dirty[d], listed: sec}
	}
	c.markDirs(sub, sec)
	c.tree = t
	c.gen++
	st.gen = c.gen
	return t, st, nil
}

// markDirs records the directories of t (their mtime from the parent's listing, which
// came before their own).
func (c *remoteCache) markDirs(t Tree, sec int64) {
	for rel, e := range t {
		if e.Mode.IsDir() {
			c.dirs[rel] = dirMark{mtime: e.Mtime, listed: sec}
		}
	}
}

func (c *remoteCache) invalidate() { c.tree, c.dirs = nil, nil }

// statPaths stats every path ("" with Stat, which follows a symlinked source the way
// opendir does; the others with Lstat), parallel at a time; the first ndirs are
// directories, the rest files. A path that no longer exists has a nil FileInfo.
func statPaths(fsys remoteFS, root string, paths []string, ndirs, parallel int) (map[string]os.FileInfo, error) {
	kind := make(map[string]string, len(paths)-ndirs)
	for _, rel := range paths[ndirs:] {
		kind[rel] = "file "
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		out      = make(map[string]os.FileInfo, len(paths))
		jobs     = make(chan string)
	)
	for range min(max(parallel, 1), len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rel := range jobs {
				var fi os.FileInfo
				var err error
				if rel == "" {
					fi, err = fsys.Stat(root)
				} else {
					fi, err = fsys.Lstat(path.Join(root, rel))
				}
				if errors.Is(err, fs.ErrNotExist) {
					fi, err = nil, nil
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					what := "directory "
					if k, ok := kind[rel]; ok {
						what = k
					}
					firstErr = fmt.Errorf("stat remote %s%s: %w", what, path.Join(root, rel), err)
				}
				out[rel] = fi
				mu.Unlock()
			}
		}()
	}
	for _, rel := range paths {
		jobs <- rel
	}
	close(jobs)
	wg.Wait()
	return out, firstErr
}

// mtimeOf is fi's mtime in seconds, -1 for nil (a directory with mark -1 is listed again).
func mtimeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.ModTime().Unix()
}

// parentDir is rel's directory ("" for a top-level entry).
func parentDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// under reports whether a strict ancestor of d is in dirs.
func under(d string, dirs map[string]int64) bool {
	if d == "" {
		return false
	}
	for p := parentDir(d); ; p = parentDir(p) {
		if _, ok := dirs[p]; ok {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// below reports whether rel lies strictly inside one of the directories in tops.
func below(rel string, tops []string) bool {
	for _, d := range tops {
		if d == "" || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}
