package confsync

import (
	"os"
	"path/filepath"
	"time"
)

// localCache keeps the target's listing between passes. Only this package writes the
// target, so an idle pass checks just the directories' change times (one lstat per
// directory instead of per file) and reuses the listing when none moved; a full walk runs
// after every change and at least every fullEvery, which also repairs local edits made
// in place (they do not move a directory's time).
type localCache struct {
	tree      Tree
	dirs      map[string]int64 // absolute directory -> ctime (ns) at the last walk
	walked    time.Time
	fullEvery time.Duration
}

func (c *localCache) list(root string, ex *Excludes, now time.Time) (Tree, error) {
	if c.tree != nil && now.Sub(c.walked) < c.fullEvery && c.fresh() {
		return c.tree, nil
	}
	t, err := listLocal(root, ex)
	if err != nil {
		c.tree = nil
		return nil, err
	}
	dirs := map[string]int64{root: ctime(root)}
	for rel, e := range t {
		if e.Mode.IsDir() {
			p := filepath.Join(root, filepath.FromSlash(rel))
			dirs[p] = ctime(p)
		}
	}
	c.tree, c.dirs, c.walked = t, dirs, now
	return t, nil
}

// fresh reports whether no directory changed since the last walk.
func (c *localCache) fresh() bool {
	for p, want := range c.dirs {
		if ctime(p) != want {
			return false
		}
	}
	return true
}

// invalidate forces a full walk at the next pass (after this package changed the target).
func (c *localCache) invalidate() { c.tree = nil }

// ctime is a directory's status change time in ns (-1 when it cannot be read). It moves
// when entries are added, removed or renamed, and when the directory's mode, owner or
// times change, which mtime alone would miss.
func ctime(p string) int64 {
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() {
		return -1
	}
	if st, ok := statT(fi); ok {
		return st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return fi.ModTime().UnixNano()
}
