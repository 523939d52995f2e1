package confsync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestHostKeyVerification(t *testing.T) {
	r := newRig(t)
	r.write(t, "a.ini", "1", 0o644)
	dir := t.TempDir()

	// A known_hosts that lists another key for the primary: refused, even with accept-new.
	other := filepath.Join(dir, "other_known_hosts")
	line := strings.Fields(readFile(t, r.sshd.KnownHostsPath))[0] +
		" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFh2a1S0t0oH9v3Y2mAqk6H0nq2gH9b6x8wWqQfM3u7K\n"
	if err := os.WriteFile(other, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	// A known_hosts without the primary, and one that does not exist.
	empty := filepath.Join(dir, "empty_known_hosts")
	if err := os.WriteFile(empty, []byte("[127.0.0.9]:22 "+strings.Fields(line)[1]+" "+strings.Fields(line)[2]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "sub", "known_hosts")

	for _, tt := range []struct {
		name      string
		file      string
		acceptNew bool
		want      error // nil = pass succeeds
	}{
		{"changed key", other, false, ErrHostKeyMismatch},
		{"changed key with accept-new", other, true, ErrHostKeyMismatch},
		{"unknown host", empty, false, ErrHostKeyUnknown},
		{"no known_hosts file", missing, false, ErrHostKeyUnknown},
		{"unknown host with accept-new records it", empty, true, nil},
		{"recorded key is then trusted", empty, false, nil},
		{"accept-new creates the file", missing, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := r.cfg
			cfg.KnownHosts, cfg.AcceptNewHostKey = tt.file, tt.acceptNew
			cfg.Target = filepath.Join(t.TempDir(), "dst")
			w, err := NewWorker(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			_, err = w.Once(context.Background())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("pass: %v; want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("pass: err = %v; want %v", err, tt.want)
			}
			if exists(filepath.Join(cfg.Target, "a.ini")) {
				t.Errorf("a file was copied from an unverified host")
			}
		})
	}
	// The recorded line is exactly the server's key.
	if got := readFile(t, missing); !strings.Contains(got, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(r.sshd.HostKey)))) {
		t.Errorf("recorded known_hosts = %q; want the server's key", got)
	}
}

func TestSymlinksStayInside(t *testing.T) {
	r := newRig(t)
	r.write(t, "conf.d/local.ini", "x", 0o644)
	r.write(t, "ssl/real.crt", "crt", 0o644)
	links := map[string]string{
		"ssl/current.crt":  "real.crt",             // inside: copied
		"ssl/up.ini":       "../conf.d/local.ini",  // inside: copied
		"ssl/passwd":       "/etc/passwd",          // absolute: refused
		"ssl/escape":       "../../outside",        // leaves the tree: refused
		"ssl/sneaky":       "sub/../../../outside", // ".." after a name: refused
		"conf.d/self-loop": ".",                    // inside
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(r.src, name)); err != nil {
			t.Fatal(err)
		}
	}
	w := r.worker(t)
	res := r.once(t, w)
	refused := map[string]bool{}
	for _, f := range res.Refused {
		refused[f.Path] = true
	}
	for name, target := range links {
		bad := strings.HasPrefix(target, "/") || strings.Contains(target, "outside")
		got, err := os.Readlink(filepath.Join(r.dst, name))
		switch {
		case bad && err == nil:
			t.Errorf("%s -> %s was copied; want refused", name, got)
		case bad && !refused[name]:
			t.Errorf("%s not reported as refused (refused: %v)", name, res.Refused)
		case !bad && got != target:
			t.Errorf("%s -> %q; want -> %q (err %v)", name, got, target, err)
		}
	}
	if st := w.Status(); len(st.Refused) != 3 {
		t.Errorf("status refused = %v; want 3 entries", st.Refused)
	}
	if log := readFile(t, r.cfg.LogFile); !strings.Contains(log, "refused ssl/passwd: absolute symlink target /etc/passwd") {
		t.Errorf("log lacks the refusal:\n%s", log)
	}

	// A symlink planted on the secondary in place of a directory is never followed: the
	// pass replaces the symlink itself, and nothing is written where it pointed.
	outside := t.TempDir()
	if err := os.RemoveAll(filepath.Join(r.dst, "conf.d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(r.dst, "conf.d")); err != nil {
		t.Fatal(err)
	}
	r.once(t, w)
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("pass wrote %d entries through a symlink out of the target", len(ents))
	}
	if fi, err := os.Lstat(filepath.Join(r.dst, "conf.d")); err != nil || !fi.IsDir() {
		t.Errorf("conf.d on the secondary is %v (%v); want a real directory", fi.Mode(), err)
	}
}

func TestSSHDKilledMidTransferChangesNothing(t *testing.T) {
	r := newRig(t)
	for i := range 50 {
		r.write(t, filepath.Join("signer", "f"+itoa(uint32(i))), strings.Repeat("a", 100+i), 0o644)
	}
	r.write(t, "conf.d/local.ini", "old", 0o644)
	w := r.worker(t)
	r.once(t, w)
	before := snapshot(t, r.dst)

	// Change everything, and add a file big enough to be caught in flight.
	for i := range 50 {
		r.write(t, filepath.Join("signer", "f"+itoa(uint32(i))), strings.Repeat("b", 200+i), 0o600)
	}
	if err := os.Remove(filepath.Join(r.src, "conf.d/local.ini")); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(r.src, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(1 << 30); err != nil { // sparse: costs no disk on the primary
		t.Fatal(err)
	}
	big.Close()

	done := make(chan error, 1)
	go func() { _, err := w.Once(context.Background()); done <- err }()
	// Kill sshd as soon as the big file is partly staged.
	deadline := time.Now().Add(30 * time.Second)
	for killed := false; !killed; {
		if time.Now().After(deadline) {
			t.Fatal("big file never appeared in staging")
		}
		m, _ := filepath.Glob(filepath.Join(stagingDirFor(r.dst), "f*"))
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 1<<20 {
				if err := r.sshd.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("pass succeeded although sshd was killed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pass did not return after sshd was killed")
	}
	after := snapshot(t, r.dst)
	if len(after) != len(before) {
		t.Errorf("entries after = %d; want %d", len(after), len(before))
	}
	for rel, b := range before {
		if after[rel] != b {
			t.Errorf("%s changed: %q; want %q", rel, after[rel], b)
		}
	}
	if exists(stagingDirFor(r.dst)) {
		t.Errorf("staging not cleaned up: %s", stagingDirFor(r.dst))
	}
	if st := w.Status(); st.LastError == "" || st.Connected {
		t.Errorf("status = %+v; want the error and no connection", st)
	}
}

func TestIOTimeout(t *testing.T) {
	r := newRig(t)
	r.write(t, "a.ini", "1", 0o644)
	r.cfg.IOTimeout = 300 * time.Millisecond
	w := r.worker(t)
	r.once(t, w)
	// Freeze the server's processes: the connection stays open but nothing arrives.
	pids := append(sessionPIDs(t, r.sshd.PID()), r.sshd.PID())
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	defer func() {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGCONT)
		}
	}()
	_, err := w.Once(context.Background())
	if !errors.Is(err, ErrIOTimeout) {
		t.Fatalf("pass against a frozen server: err = %v; want ErrIOTimeout", err)
	}
}

// sessionPIDs lists the processes below pid (sshd's per-connection processes).
func sessionPIDs(t *testing.T, pid int) []int {
	t.Helper()
	var out []int
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		var p int
		if _, err := fmtSscan(e.Name(), &p); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		var pp int
		if _, err := fmtSscan(f[1], &pp); err == nil {
			parent[p] = pp
		}
	}
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no sshd session processes found")
	}
	return out
}
