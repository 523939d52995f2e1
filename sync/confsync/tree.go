package confsync

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/pkg/sftp"
)

// Entry is one file, directory or symlink of a tree, as the quick check sees it.
type Entry struct {
	Path  string      // relative, slash-separated, never empty, never starting with "/"
	Mode  fs.FileMode // type bits and permissions (incl. setuid/setgid/sticky)
	Size  int64
	Mtime int64 // seconds since the epoch (SFTP v3 resolution)
	UID   uint32
	GID   uint32
	Link  string // symlink target (symlinks only)
}

// Tree maps relative paths to entries.
type Tree map[string]Entry

// validName reports whether a directory entry name can be used as one path component.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// supported reports whether the entry type is copied: files, directories and symlinks.
// Others (named pipes, sockets, devices) are kept in the remote tree and refused by
// makePlan, so they are reported.
func supported(m fs.FileMode) bool {
	return m.IsRegular() || m.IsDir() || m&fs.ModeSymlink != 0
}

// listLocal walks the local target without following symlinks.
func listLocal(root string, ex *Excludes) (Tree, error) {
	t := Tree{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && os.IsNotExist(err) {
				return filepath.SkipAll
			}
			return err
		}
		if p == root {
			return nil
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		if ex.Match(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := entryFromInfo(rel, fi)
		if e.Mode&fs.ModeSymlink != 0 {
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		t[rel] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	return t, nil
}

func entryFromInfo(rel string, fi fs.FileInfo) Entry {
	e := Entry{Path: rel, Mode: fi.Mode(), Size: fi.Size(), Mtime: fi.ModTime().Unix()}
	if st, ok := statT(fi); ok {
		e.UID, e.GID = st.Uid, st.Gid
	}
	return e
}

func statT(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// remoteFS is the part of the SFTP client the remote walk needs.
type remoteFS interface {
	ReadDirContext(ctx context.Context, p string) ([]os.FileInfo, error)
	ReadLink(p string) (string, error)
	Stat(p string) (os.FileInfo, error)
	Lstat(p string) (os.FileInfo, error)
}

// walkRemote lists the directories tops ("" = root) of the primary's tree and everything
// below them with ReadDir (one SFTP round trip per 100 entries, attributes included),
// several directories at a time. The tree holds the entries below the tops, not the tops
// themselves; n counts the directories listed. A name the server returns that is not a
// single path component is ErrUnsafePath.
func walkRemote(ctx context.Context, c remoteFS, root string, tops []string, ex *Excludes, parallel int) (t Tree, n int, err error) {
	t = Tree{}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		sem      = make(chan struct{}, max(parallel, 1))
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	var walk func(rel string)
	walk = func(rel string) {
		defer wg.Done()
		sem <- struct{}{}
		dir := path.Join(root, rel)
		infos, err := c.ReadDirContext(ctx, dir)
		<-sem
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			fail(fmt.Errorf("read remote directory %s: %w", dir, err))
			return
		}
		mu.Lock()
		n++
		mu.Unlock()
		for _, fi := range infos {
			name := fi.Name()
			if !validName(name) {
				fail(fmt.Errorf("remote directory %s lists %q: %w", dir, name, ErrUnsafePath))
				return
			}
			r := path.Join(rel, name)
			if ex.Match(r, fi.IsDir()) {
				continue
			}
			e := entryFromRemote(r, fi)
			if e.Mode&fs.ModeSymlink != 0 {
				if e.Link, err = c.ReadLink(path.Join(root, r)); err != nil {
					fail(fmt.Errorf("read remote symlink %s: %w", r, err))
					return
				}
			}
			mu.Lock()
			t[r] = e
			mu.Unlock()
			if fi.IsDir() {
				wg.Add(1)
				go walk(r)
			}
		}
	}
	for _, top := range tops {
		wg.Add(1)
		go walk(top)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, n, firstErr
	}
	return t, n, nil
}

func entryFromRemote(rel string, fi os.FileInfo) Entry {
	e := Entry{Path: rel, Mode: fi.Mode(), Size: fi.Size(), Mtime: fi.ModTime().Unix()}
	if st, ok := fi.Sys().(*sftp.FileStat); ok {
		e.UID, e.GID = st.UID, st.GID
	}
	return e
}

// sortedPaths returns the tree's paths in lexical order (parents before children).
func (t Tree) sortedPaths() []string {
	out := make([]string, 0, len(t))
	for p := range t {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
