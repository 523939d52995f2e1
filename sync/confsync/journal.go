package confsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/internal/atomicfile"
)

// Crash consistency. A commit is a list of steps (deletions, new directories, renames of
// staged files, attribute and directory time changes). Before the first step, the whole
// list is written to <state>/journal and fsynced (with its directory): the intent. The
// staged files were flushed (syncfs) before that. Every step can be redone and undone
// any number of times with the same result, so after a crash (kill -9, power loss) the
// next pass, before it reads the tree, replays the journal to its end ("forward"), or,
// when the crash came during a rollback, finishes undoing it ("back"). Only then is the
// target flushed (syncfs), the journal removed and the staging area deleted. The target
// therefore holds either the old or the new tree, never a mix, once anything reads it
// through lbagent.

const journalFile = "journal"

// journal is the intent of one commit.
type journal struct {
	Target string  `json:"target"`
	Stage  string  `json:"stage"`
	Back   bool    `json:"back,omitempty"` // the commit failed: undo every step
	Steps  []jstep `json:"steps"`
}

// jstep is one step of a commit.
type jstep struct {
	Op   string `json:"op"` // remove, mkdir, place, attrs, time
	Path string `json:"path"`
	// remove: where the entry is moved (in the staging area); place: the staged file.
	Src string `json:"src,omitempty"`
	// place: where the old version is kept (a hard link) while the commit runs.
	Backup string `json:"backup,omitempty"`
	HadOld bool   `json:"had_old,omitempty"`
	Ino    uint64 `json:"ino,omitempty"` // place: the staged file's inode (what undo may remove)
	Want   Entry  `json:"want"`          // mkdir, attrs, time
	Have   Entry  `json:"have"`          // attrs, time: the old values
	Mode   bool   `json:"mode,omitempty"`
	Own    bool   `json:"own,omitempty"`
}

// testHook, when set (tests only), is called at every point of a pass where a crash is
// interesting; the kill test's child process kills itself there.
var testHook = func(string) {}

// steps turns a plan into journal steps, in the order they run.
func (a *applier) steps(p *Plan, local Tree) []jstep {
	var out []jstep
	removed := map[string]bool{}
	for i, e := range p.Remove {
		removed[e.Path] = true
		out = append(out, jstep{Op: "remove", Path: e.Path, Src: filepath.Join(a.stage, "old", "r"+strconv.Itoa(i))})
	}
	for _, e := range p.Mkdir {
		out = append(out, jstep{Op: "mkdir", Path: e.Path, Want: e, Mode: true, Own: true})
	}
	for i, e := range append(append([]Entry{}, p.Fetch...), p.Symlink...) {
		l, ok := local[e.Path]
		out = append(out, jstep{Op: "place", Path: e.Path, Src: a.staged[e.Path], Ino: inode(a.staged[e.Path]),
			Backup: filepath.Join(a.stage, "old", "p"+strconv.Itoa(i)), HadOld: ok && !l.Mode.IsDir() && !removed[e.Path]})
	}
	for _, c := range p.Attrs {
		out = append(out, jstep{Op: "attrs", Path: c.want.Path, Want: c.want, Have: c.have, Mode: c.mode, Own: c.own})
	}
	for _, d := range p.Dirs {
		out = append(out, jstep{Op: "time", Path: d.Path, Want: d, Have: local[d.Path]})
	}
	return out
}

// commit applies the plan through the journal. An error rolls every step back; the error
// says whether the rollback was complete.
func (a *applier) commit(p *Plan, local Tree) error {
	j := &journal{Target: a.root, Stage: a.stage, Steps: a.steps(p, local)}
	if err := a.writeJournal(j); err != nil {
		return err
	}
	testHook("journal")
	for i, s := range j.Steps {
		if err := a.forward(s); err != nil {
			return a.rollback(j, i, err)
		}
		testHook("step")
	}
	return a.finish(a.durablePaths(j.Steps))
}

// durablePaths lists what a small commit must fsync: the directories whose entries
// changed, and the entries whose attributes changed. nil means syncfs (a large commit, or
// one that changed a symlink's owner, which cannot be fsynced).
func (a *applier) durablePaths(steps []jstep) []string {
	if !a.fsyncEach {
		return nil
	}
	set := map[string]bool{}
	for _, s := range steps {
		dst := filepath.Join(a.root, filepath.FromSlash(s.Path))
		switch s.Op {
		case "remove", "place":
			set[filepath.Dir(dst)] = true
		case "mkdir":
			set[filepath.Dir(dst)], set[dst] = true, true
		case "attrs", "time":
			if s.Want.Mode&fs.ModeSymlink != 0 {
				return nil
			}
			set[dst] = true
		}
	}
	if len(set) > 2*smallPass {
		return nil
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	return out
}

// rollback undoes the commit after err (at step failed), recording the change of
// direction first.
func (a *applier) rollback(j *journal, failed int, err error) error {
	j.Back = true
	if jerr := a.writeJournal(j); jerr != nil {
		return fmt.Errorf("%w (not rolled back: %v; the next pass completes the commit)", err, jerr)
	}
	var rb []string
	for _, uerr := range a.undo(j.Steps) {
		rb = append(rb, uerr.Error())
	}
	if len(rb) > 0 {
		return fmt.Errorf("%w (rollback incomplete, the next pass retries it: %s)", err, strings.Join(rb, "; "))
	}
	if ferr := a.finish(nil); ferr != nil {
		return fmt.Errorf("%w (rolled back; %v)", err, ferr)
	}
	return fmt.Errorf("%w (rolled back)", err)
}

// undo undoes every step, done or not (undoing a step that never ran changes nothing):
// in reverse order, then the directories' times, which the other undone steps move.
func (a *applier) undo(steps []jstep) []error {
	var errs []error
	for k := len(steps) - 1; k >= 0; k-- {
		if steps[k].Op == "time" {
			continue
		}
		if err := a.backward(steps[k]); err != nil {
			errs = append(errs, err)
		}
		testHook("back")
	}
	for _, s := range steps {
		if s.Op == "time" {
			if err := a.backward(s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// finish makes the target durable (fsync of paths, or syncfs when paths is nil or one
// cannot be fsynced), then drops the journal.
func (a *applier) finish(paths []string) error {
	synced := paths != nil
	for _, p := range paths {
		if err := fsyncPath(p); err != nil {
			synced = false
			break
		}
	}
	if !synced {
		if err := syncFS(a.root); err != nil {
			return err
		}
	}
	testHook("synced")
	if err := atomicfile.Remove(a.st.path(journalFile)); err != nil {
		return fmt.Errorf("remove journal: %w", err)
	}
	testHook("cleared")
	return nil
}

func (a *applier) writeJournal(j *journal) error {
	b, err := json.Marshal(j)
	if err == nil {
		err = atomicfile.WriteFile(a.st.path(journalFile), b, 0o600)
	}
	if err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	return nil
}

// forward does one step; done already, it does nothing.
func (a *applier) forward(s jstep) error {
	dst, err := a.path(s.Path)
	if err != nil {
		return err
	}
	switch s.Op {
	case "remove":
		if exists(s.Src) {
			return nil
		}
		if err := os.Rename(dst, s.Src); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", s.Path, err)
		}
	case "mkdir":
		if err := os.Mkdir(dst, 0o700); err != nil && !(errors.Is(err, fs.ErrExist) && isDir(dst)) {
			return fmt.Errorf("mkdir %s: %w", s.Path, err)
		}
		return a.setAttrs(dst, s.Want, true, true)
	case "place":
		if !exists(s.Src) {
			return nil // renamed into place before
		}
		if fi, err := os.Lstat(dst); err == nil {
			if fi.IsDir() {
				return fmt.Errorf("replace %s: is a directory", s.Path)
			}
			if !exists(s.Backup) {
				if err := os.Link(dst, s.Backup); err != nil {
					return fmt.Errorf("keep old %s: %w", s.Path, err)
				}
			}
		}
		if err := os.Rename(s.Src, dst); err != nil {
			return fmt.Errorf("rename %s into place: %w", s.Path, err)
		}
	case "attrs":
		return a.setAttrs(dst, s.Want, s.Mode, s.Own)
	case "time":
		t := time.Unix(s.Want.Mtime, 0)
		if err := os.Chtimes(dst, t, t); err != nil {
			return fmt.Errorf("set time of %s: %w", s.Path, err)
		}
	default:
		return fmt.Errorf("journal: unknown step %q", s.Op)
	}
	return nil
}

// backward undoes one step, whether it ran, ran partly or not at all; undone already, it
// does nothing.
func (a *applier) backward(s jstep) error {
	dst, err := a.path(s.Path)
	if err != nil {
		// Its parent is gone or is no directory (any more): a new directory's content,
		// undone with it, or a file's place that an earlier undo gave back to the file.
		// Nothing of this step can be in the tree; nothing is written.
		return nil
	}
	switch s.Op {
	case "remove":
		if exists(s.Src) {
			if err := os.Rename(s.Src, dst); err != nil {
				return fmt.Errorf("restore %s: %w", s.Path, err)
			}
		}
	case "mkdir":
		if !isDir(dst) {
			return nil // gone, or the old file is back in its place
		}
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove new directory %s: %w", s.Path, err)
		}
	case "place":
		switch {
		case exists(s.Backup):
			if err := os.Rename(s.Backup, dst); err != nil {
				return fmt.Errorf("restore %s: %w", s.Path, err)
			}
		case !s.HadOld && !exists(s.Src) && inode(dst) == s.Ino && s.Ino != 0:
			// Only the file this commit placed (an old entry given back by an earlier
			// undo has another inode).
			if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove new %s: %w", s.Path, err)
			}
		}
	case "attrs":
		return a.setAttrs(dst, s.Have, s.Mode, s.Own)
	case "time":
		if s.Have.Path == "" || !isDir(dst) {
			return nil // a new directory: removed with its mkdir
		}
		t := time.Unix(s.Have.Mtime, 0)
		if err := os.Chtimes(dst, t, t); err != nil {
			return fmt.Errorf("restore time of %s: %w", s.Path, err)
		}
	}
	return nil
}

// recoverTarget completes what a crashed process left: a journal is replayed (forward, or
// back when it was rolling back), then the staging area is removed. The caller holds the
// lock. It reports whether a journal was replayed.
func recoverTarget(root string, st *state, keepOwner bool) (bool, error) {
	stage := stagingDirFor(root)
	b, err := os.ReadFile(st.path(journalFile))
	if errors.Is(err, fs.ErrNotExist) {
		if !exists(stage) {
			return false, nil
		}
		if err := os.RemoveAll(stage); err != nil {
			return false, fmt.Errorf("remove staging left by an interrupted pass: %w", err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return false, fmt.Errorf("journal %s: %w", st.path(journalFile), err)
	}
	if j.Target != root || j.Stage != stage {
		return false, fmt.Errorf("journal %s is for %s, not %s: %w", st.path(journalFile), j.Target, root, ErrUnsafePath)
	}
	for _, s := range j.Steps {
		for _, p := range []string{s.Src, s.Backup} {
			if p != "" && !strings.HasPrefix(p, stage+"/") {
				return false, fmt.Errorf("journal %s names %s outside the staging area: %w", st.path(journalFile), p, ErrUnsafePath)
			}
		}
	}
	a := &applier{root: root, stage: stage, st: st, keepOwner: keepOwner, checked: map[string]bool{}}
	if j.Back {
		if errs := a.undo(j.Steps); len(errs) > 0 {
			return true, fmt.Errorf("recover (roll back) interrupted commit: %w", errors.Join(errs...))
		}
	} else {
		for _, s := range j.Steps {
			if err := a.forward(s); err != nil {
				return true, fmt.Errorf("recover (complete) interrupted commit: %w", err)
			}
		}
	}
	if err := a.finish(nil); err != nil {
		return true, fmt.Errorf("recover interrupted commit: %w", err)
	}
	if err := os.RemoveAll(stage); err != nil {
		return true, fmt.Errorf("remove staging left by an interrupted pass: %w", err)
	}
	return true, nil
}

// fsyncPath fsyncs a file or directory without following a symlink.
func fsyncPath(p string) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// inode is p's inode number (0 when it cannot be read); p is not followed.
func inode(p string) uint64 {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0
	}
	if st, ok := statT(fi); ok {
		return st.Ino
	}
	return 0
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func isDir(p string) bool { fi, err := os.Lstat(p); return err == nil && fi.IsDir() }
