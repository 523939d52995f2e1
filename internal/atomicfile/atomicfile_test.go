package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFileModes(t *testing.T) {
	old := syscall.Umask(0o077) // perm is exact: the umask must not narrow it
	defer syscall.Umask(old)
	tests := []struct {
		name     string
		existing fs.FileMode // 0: no file before
		perm     fs.FileMode
		opts     []Option
		want     fs.FileMode
	}{
		{"new file gets perm", 0, 0o644, nil, 0o644},
		{"perm replaces the old mode", 0o600, 0o640, nil, 0o640},
		{"KeepMode keeps the old mode", 0o600, 0o644, []Option{KeepMode()}, 0o600},
		{"KeepMode without old file gets perm", 0, 0o640, []Option{KeepMode()}, 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if tt.existing != 0 {
				if err := os.WriteFile(path, []byte("old content that is longer"), tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte("new"), tt.perm, tt.opts...); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != "new" {
				t.Errorf("content %q; want %q", b, "new")
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("mode %v; want %v", got, tt.want)
			}
			assertOnly(t, filepath.Dir(path), "f")
		})
	}
}

// assertOnly fails unless dir holds exactly names (no temporary file left behind).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v; want %v", dir, got, names)
	}
}

func TestWriteFileErrorLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	// A non-empty directory cannot be renamed over: the write fails at the rename, after
	// the temporary file was written.
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("new"), 0o644)
	if err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	if !strings.HasPrefix(err.Error(), "write "+path+": ") {
		t.Errorf("error %q does not start with %q", err, "write "+path+": ")
	}
	if _, err := os.Stat(filepath.Join(path, "x")); err != nil {
		t.Errorf("the directory in the way was changed: %v", err)
	}
	assertOnly(t, dir, "f")
}

func TestWriteFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "f")
	err := WriteFile(path, []byte("x"), 0o644)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v; want one that is fs.ErrNotExist", err)
	}
}

func TestWriteFileKeepOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 12345, 23456); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new"), 0o600, KeepOwner(), KeepMode()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid, _ := owner(fi)
	if uid != 12345 || gid != 23456 || fi.Mode().Perm() != 0o640 {
		t.Errorf("owner %d:%d mode %v; want 12345:23456 0640", uid, gid, fi.Mode().Perm())
	}
}

func TestWriteFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, []byte("new"), 0o600, Owner(12345, 23456)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid, _ := owner(fi); uid != 12345 || gid != 23456 {
		t.Errorf("owner %d:%d; want 12345:23456", uid, gid)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir)
	if err := Remove(path); err != nil {
		t.Errorf("removing a missing file: %v; want nil", err)
	}
	if err := Remove(filepath.Join(dir, "no", "f")); err == nil {
		t.Error("removing in a missing directory succeeded; want the directory's error")
	}
}
