package confsync

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// checkSpace refuses a pass whose downloads (files, each rounded up to whole blocks) would
// not fit on dir's filesystem while keeping reservePct percent of it free. Staged files
// are renamed into place and the old versions are hard links, so a pass needs the new
// files' size once.
func checkSpace(dir string, files []Entry, reservePct float64) error {
	var st unix.Statfs_t
	for { // the nearest existing directory (a first pass creates the target)
		err := unix.Statfs(dir, &st)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || dir == filepath.Dir(dir) {
			return fmt.Errorf("free space of %s: %w", dir, err)
		}
		dir = filepath.Dir(dir)
	}
	bs := max(int64(st.Bsize), 1)
	var need int64
	for _, e := range files {
		need += (e.Size + bs - 1) / bs * bs
	}
	avail := int64(st.Bavail) * bs
	reserve := int64(float64(int64(st.Blocks)*bs) * reservePct / 100)
	if need <= avail-reserve {
		return nil
	}
	return fmt.Errorf("%w on the filesystem of %s: the pass would download %s bytes, %s are free above the %g%% reserve (space-reserve); nothing was fetched, retrying in %s",
		ErrNoSpace, dir, thousands(need), thousands(max(avail-reserve, 0)), reservePct, noSpaceBackoff)
}
