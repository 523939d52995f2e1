package confsync

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
)

// A file the login user cannot read on the primary, and one that vanishes between the
// listing and the download, are skipped: named in the log and in Status, the rest of the
// pass commits, and the local copies stay.
func TestUnreadableAndVanishedFilesAreSkipped(t *testing.T) {
	// The guide's login is an unprivileged user; nobody can read only what is public.
	r := newRigOpts(t, testenv.SSHDOptions{User: "nobody", Config: []string{"ForceCommand internal-sftp"}})
	// nobody reads its authorized_keys (0644) in the server's directory, and the tree.
	if err := os.Chmod(r.sshd.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(r.src); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.write(t, "conf.d/a.ini", "a v1", 0o644)
	r.write(t, "conf.d/secret.ini", "primary's secret", 0o600) // root's: nobody cannot read it
	r.write(t, "signer/gone.xml", "about to vanish", 0o644)
	r.write(t, "signer/keyconf.xml", "keyconf v1", 0o644)
	for rel, c := range map[string]string{"conf.d/secret.ini": "local secret", "signer/gone.xml": "local gone"} {
		p := filepath.Join(r.dst, rel)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gone := filepath.Join(r.src, "signer/gone.xml")
	testHook = func(kind string) {
		if kind == "listed" {
			_ = os.Remove(gone)
		}
	}
	defer func() { testHook = func(string) {} }()
	w := r.worker(t)
	res, err := w.Once(context.Background())
	if err != nil {
		t.Fatalf("pass: %v; want success with skipped files\n%s", err, r.sshd.Log())
	}
	skipped := map[string]string{}
	for _, s := range res.Skipped {
		skipped[s.Path] = s.Reason
	}
	if !strings.Contains(skipped["conf.d/secret.ini"], "permission denied") || !strings.Contains(skipped["signer/gone.xml"], "not exist") || len(skipped) != 2 {
		t.Errorf("skipped = %q; want conf.d/secret.ini (permission denied) and signer/gone.xml (does not exist)", skipped)
	}
	for rel, want := range map[string]string{"conf.d/a.ini": "a v1", "signer/keyconf.xml": "keyconf v1",
		"conf.d/secret.ini": "local secret", "signer/gone.xml": "local gone"} {
		if got := readFile(t, filepath.Join(r.dst, rel)); got != want {
			t.Errorf("%s = %q; want %q", rel, got, want)
		}
	}
	for _, it := range res.Items {
		if it.Path == "conf.d/secret.ini" || it.Path == "signer/gone.xml" {
			t.Errorf("item %q for a skipped file", it)
		}
	}
	st := w.Status()
	if len(st.Skipped) != 2 || st.LastError != "" || !strings.Contains(st.Warning, "skipped 2 unreadable") {
		t.Errorf("status skipped %v, last error %q, warning %q; want 2 skipped and a warning", st.Skipped, st.LastError, st.Warning)
	}
	log := readFile(t, r.cfg.LogFile)
	for _, want := range []string{"] skipped conf.d/secret.ini: ", "] skipped signer/gone.xml: ", "(code 23)\n", "] >f+++++++++ conf.d/a.ini\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// Readable again: the next pass fetches it and the skip is gone.
	if err := os.Chmod(filepath.Join(r.src, "conf.d/secret.ini"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = r.once(t, w)
	if len(res.Skipped) != 0 || readFile(t, filepath.Join(r.dst, "conf.d/secret.ini")) != "primary's secret" {
		t.Errorf("after chmod: skipped %v, secret.ini %q; want fetched", res.Skipped, readFile(t, filepath.Join(r.dst, "conf.d/secret.ini")))
	}
	if st := w.Status(); len(st.Skipped) != 0 || st.Warning != "" {
		t.Errorf("status after the file became readable: skipped %v, warning %q", st.Skipped, st.Warning)
	}
}

// FIFOs (and other special files) are not copied but listed as refused; a name with a
// newline cannot forge a line of the pass log.
func TestSpecialFilesRefusedAndNamesEscaped(t *testing.T) {
	r := newRig(t)
	r.write(t, "a.ini", "1", 0o644)
	if err := syscall.Mkfifo(filepath.Join(r.src, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	evil := "x\n2025/03/10 11:42:01 [1] *deleting   signer/keyconf.xml"
	r.write(t, evil, "evil", 0o644)
	w := r.worker(t)
	res := r.once(t, w)
	if len(res.Refused) != 1 || res.Refused[0].Path != "pipe" || !strings.Contains(res.Refused[0].Reason, "named pipe") {
		t.Errorf("refused = %v; want the pipe as a named pipe", res.Refused)
	}
	if exists(filepath.Join(r.dst, "pipe")) {
		t.Errorf("the FIFO was copied")
	}
	if got := readFile(t, filepath.Join(r.dst, evil)); got != "evil" {
		t.Errorf("file with a newline in its name = %q; want copied", got)
	}
	log := readFile(t, r.cfg.LogFile)
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "2025/03/10") {
			t.Errorf("a name forged the log line %q", line)
		}
	}
	for _, want := range []string{"] refused pipe: special file (named pipe) not copied\n", `] >f+++++++++ x\#0122025/03/10 11:42:01 [1] *deleting   signer/keyconf.xml` + "\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// The refusal is reported on every pass, and the pass is otherwise idle.
	if res := r.once(t, w); len(res.Items) != 0 || len(res.Refused) != 1 {
		t.Errorf("second pass: items %v, refused %v; want none and the pipe", res.Items, res.Refused)
	}
}

// A pass whose files do not fit above the reserve is refused before anything is fetched:
// the filesystem is not filled, the target and staging are untouched, and the worker
// waits long before trying again.
func TestFullDiskRefusedBeforeDownload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	testenv.Require(t, "mount")
	r := newRig(t)
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", disk).Run() })
	r.dst = filepath.Join(disk, "xroad")
	r.cfg.Target = r.dst + "/"
	r.write(t, "a.ini", "small", 0o644)
	w := r.worker(t)
	r.once(t, w)
	free := func() uint64 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(disk, &st); err != nil {
			t.Fatal(err)
		}
		return st.Bavail * uint64(st.Bsize)
	}
	before, tree := free(), snapshot(t, r.dst)

	for _, tt := range []struct {
		name    string
		size    int64
		reserve float64
	}{
		{"larger than the free space", 6 << 20, 5},
		{"fits, but not above the reserve", 3 << 20, 50},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r.write(t, "big.bin", strings.Repeat("b", int(tt.size)), 0o644)
			r.write(t, "a.ini", "small, changed", 0o644)
			w.cfg.SpaceReserve, w.syncer.cfg.SpaceReserve = tt.reserve, tt.reserve
			_, err := w.Once(context.Background())
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("pass: err = %v; want ErrNoSpace", err)
			}
			if !strings.Contains(err.Error(), "reserve") || !strings.Contains(err.Error(), "nothing was fetched") {
				t.Errorf("message %q does not say what happened", err)
			}
			if got := free(); got != before {
				t.Errorf("free space %d after the refused pass; want %d (nothing written)", got, before)
			}
			if got := snapshot(t, r.dst); diffTrees(got, tree) != "" {
				t.Errorf("target changed: %s", diffTrees(got, tree))
			}
			if exists(stagingDirFor(r.dst)) {
				t.Errorf("staging left behind")
			}
			if got := retryWait(r.cfg.Interval, 1, err); got < 5*time.Minute {
				t.Errorf("retry after a full disk in %s; want a long back-off", got)
			}
		})
	}
	// Space is freed on the primary's side (the file goes): the next pass applies.
	if err := os.Remove(filepath.Join(r.src, "big.bin")); err != nil {
		t.Fatal(err)
	}
	r.once(t, w)
	if got := readFile(t, filepath.Join(r.dst, "a.ini")); got != "small, changed" {
		t.Errorf("a.ini = %q after the disk issue; want the change", got)
	}
}

func TestRetryWait(t *testing.T) {
	for _, tt := range []struct {
		interval time.Duration
		fails    int
		err      error
		want     time.Duration
	}{
		{time.Second, 0, nil, time.Second},
		{time.Second, 1, errors.New("x"), time.Second},
		{time.Second, 2, errors.New("x"), 2 * time.Second},
		{time.Second, 4, errors.New("x"), 8 * time.Second},
		{time.Second, 10, errors.New("x"), 30 * time.Second},
		{time.Minute, 3, errors.New("x"), time.Minute},
		{time.Second, 1, ErrNoSpace, noSpaceBackoff},
		{time.Hour, 1, ErrNoSpace, time.Hour},
	} {
		if got := retryWait(tt.interval, tt.fails, tt.err); got != tt.want {
			t.Errorf("retryWait(%s, %d, %v) = %s; want %s", tt.interval, tt.fails, tt.err, got, tt.want)
		}
	}
}
