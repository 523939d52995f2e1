package confsync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/internal/atomicfile"
)

// The racy-timestamp rule (git's, for its index). SFTP v3 times are whole seconds, so a
// file rewritten within the second its copy was read in, keeping its size, keeps the
// size and time the quick check compares: no later pass, not even a full listing, would
// notice. So a regular file whose time is not safely in the past when a pass sees it,
// that is, not older than racyWindow before the pass started, is racy: on every
// following pass it is stat-ed on the primary (even when its directory is not listed)
// and, when the quick check finds nothing, fetched again into the staging area and
// compared byte for byte with the local copy. A difference is applied and logged like
// any change (rsync's ">fc"); an identical copy is dropped and nothing is reported. The
// file stops being racy after a pass that saw its time more than racyWindow old: that
// pass read its content after its last second had ended, so any later write moves its
// time.
//
// The racy set is kept in the state directory's racy file (NUL-separated paths) so that
// the next process (the worker after `lbagent sync --once` at boot) checks it too.
//
// racyWindow covers the one-second resolution plus the difference between the primary's
// and this node's clocks (assumed within 2 s, as for directories: X-Road needs NTP);
// SFTP gives no cheap way to read the primary's clock without writing there.
const racyWindow = remoteSettle

// racyFile holds the racy set between processes, in the state directory.
const racyFile = "racy"

// isRacy reports whether a file with mtime m (seconds) seen by a pass that started at
// sec is racy.
func isRacy(m, sec int64) bool { return m >= sec-int64(racyWindow/time.Second) }

// racyAfter is the racy set after a successful pass that started at sec: the regular
// files of remote with a recent time. Every file of the old set was stat-ed and checked
// by content in that pass, so dropping the ones that settled is safe. When remote is the
// tree the old set was made from (same), only the old set can still be racy: a file is
// never seen to be more recent later.
func racyAfter(old map[string]bool, remote Tree, sec int64, same bool) map[string]bool {
	out := map[string]bool{}
	add := func(rel string) {
		if e, ok := remote[rel]; ok && e.Mode.IsRegular() && isRacy(e.Mtime, sec) {
			out[rel] = true
		}
	}
	if same {
		for rel := range old {
			add(rel)
		}
		return out
	}
	for rel := range remote {
		add(rel)
	}
	return out
}

// sameSet reports whether a and b hold the same paths.
func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// loadRacy reads the racy set a previous process left in the state directory (empty
// when none).
func loadRacy(st *state) (map[string]bool, error) {
	b, err := os.ReadFile(st.path(racyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read racy set: %w", err)
	}
	out := map[string]bool{}
	for _, rel := range strings.Split(string(b), "\x00") {
		if rel != "" {
			out[rel] = true
		}
	}
	return out, nil
}

// saveRacy replaces the racy file of the state directory.
func saveRacy(st *state, set map[string]bool) error {
	paths := make([]string, 0, len(set))
	for rel := range set {
		paths = append(paths, rel)
	}
	sort.Strings(paths)
	var b bytes.Buffer
	for _, rel := range paths {
		b.WriteString(rel + "\x00")
	}
	if err := atomicfile.WriteFile(st.path(racyFile), b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("save racy set: %w", err)
	}
	return nil
}

// sameContent reports whether the files a and b hold the same bytes (b is not followed
// when it is a symlink).
func sameContent(a, b string) (bool, error) {
	x, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile(b, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	y, err := io.ReadAll(f)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}
