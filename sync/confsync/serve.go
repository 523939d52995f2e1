package confsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fsnotify/fsnotify"
)

// Change notices. On the primary, `lbagent sync serve SOURCE [EXCLUDE...]`, started by the
// secondary over its SSH connection (an exec request beside the SFTP channel), watches the
// tree with inotify and writes one line per changed path; the secondary runs a pass at
// once, listing the changed path's directory. Protocol on stdout: first ServeReady once
// every directory is watched, then one Go-quoted relative path per line ("" = the top).
// Nothing is read from the primary's tree but directory names, nothing is written.

// ServeReady is serve's first line: the watches are in place.
const ServeReady = "lbagent-sync-serve 1"

// Serve watches source (without the excluded paths) until ctx ends or out fails, and
// writes change notices to out.
func Serve(ctx context.Context, source string, excludes []string, out io.Writer) error {
	ex, err := NewExcludes(excludes)
	if err != nil {
		return err
	}
	root := filepath.Clean(source)
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	defer w.Close()
	if err := watchTree(w, root, root, ex); err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	if _, err := bw.WriteString(ServeReady + "\n"); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflowed queue lost events: the top stands for "list everything".
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("inotify: %w", err)
			}
			if _, err := bw.WriteString(strconv.Quote("") + "\n"); err != nil {
				return err
			}
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			rel, err := filepath.Rel(root, ev.Name)
			if err != nil || rel == ".." || len(rel) > 2 && rel[:3] == "../" {
				continue
			}
			if rel == "." {
				rel = ""
			}
			rel = filepath.ToSlash(rel)
			if rel != "" && excludedPath(ex, rel) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					_ = watchTree(w, root, ev.Name, ex) // a new directory: watch it and what it holds
				}
			}
			if _, err := bw.WriteString(strconv.Quote(rel) + "\n"); err != nil {
				return err
			}
		}
		// Flush once the queue is drained: a burst of events is one write.
		if len(w.Events) == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// watchTree adds dir and every directory below it that is not excluded.
func watchTree(w *fsnotify.Watcher, root, dir string, ex *Excludes) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && (errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist)) {
				return filepath.SkipDir // unreadable here, skipped by the passes too
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != root {
			if rel, _ := filepath.Rel(root, p); ex.Match(filepath.ToSlash(rel), true) {
				return filepath.SkipDir
			}
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}

// excludedPath reports whether rel or one of its directories is excluded.
func excludedPath(ex *Excludes, rel string) bool {
	for p := rel; ; p = parentDir(p) {
		if ex.Match(p, p != rel) {
			return true
		}
		if !containsSlash(p) {
			return false
		}
	}
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}
