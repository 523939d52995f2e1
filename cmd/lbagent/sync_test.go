package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/sync/confsync"
	"github.com/xroad-lb/lbkit/testenv"
)

// --print-systemd prints only the unit, --print-logrotate only the logrotate file; the
// shipped files are what they print; systemd-analyze verify finds nothing to say about
// the units; the unit leaves /var/tmp shared, so the guide's pause flag reaches it.
func TestSyncPrintUnits(t *testing.T) {
	code, unit := capture(t, "sync", "--print-systemd")
	if code != 0 || !strings.HasPrefix(unit, "# /etc/systemd/system/lbagent-sync.service\n") || strings.Contains(unit, "logrotate") {
		t.Errorf("--print-systemd: exit %d, output:\n%s\nwant the unit alone", code, unit)
	}
	for _, bad := range []string{"PrivateTmp=yes", "PrivateTmp=true", "DynamicUser", "TemporaryFileSystem"} {
		if strings.Contains(unit, bad) {
			t.Errorf("unit has %s: the pause flag in /var/tmp/xroad would be invisible", bad)
		}
	}
	code, rot := capture(t, "sync", "--print-logrotate")
	if code != 0 || !strings.Contains(rot, confsync.DefaultLogFile+" {") || strings.Contains(rot, "[Unit]") {
		t.Errorf("--print-logrotate: exit %d, output:\n%s\nwant the logrotate file alone", code, rot)
	}
	for file, want := range map[string]string{
		"../../deploy/systemd/lbagent-sync.service": confsync.SystemdUnit("/usr/bin/lbagent"),
		"../../deploy/logrotate/lbagent-sync":       confsync.LogrotateSnippet(""),
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s differs from what lbagent prints; regenerate it", file)
		}
	}

	analyze := testenv.Require(t, "systemd-analyze")
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	units := map[string]string{"lbagent-sync.service": unit}
	b, err := os.ReadFile("../../deploy/systemd/lbagent.service")
	if err != nil {
		t.Fatal(err)
	}
	units["lbagent.service"] = strings.ReplaceAll(string(b), "/usr/bin/lbagent", bin)
	for name, body := range units {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", p).CombinedOutput() // man pages come with the package
		if err != nil || len(strings.TrimSpace(string(out))) != 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}

// lbagent sync --once exits 23, as rsync does, when it applied the pass but skipped a
// file the primary could not read.
func TestSyncOnceExitsPartial(t *testing.T) {
	s := testenv.NewSSHD(t, testenv.SSHDOptions{User: "nobody", Config: []string{"ForceCommand internal-sftp"}})
	base := t.TempDir()
	for _, d := range []string{s.Dir, base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, dst := filepath.Join(base, "primary"), filepath.Join(base, "secondary")
	for rel, mode := range map[string]os.FileMode{"conf.d/a.ini": 0o644, "conf.d/secret.ini": 0o600} {
		p := filepath.Join(src, rel)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(rel), mode); err != nil {
			t.Fatal(err)
		}
	}
	code, out := capture(t, "sync", "--once", "--xroad-dir", filepath.Join(base, "none"), "--primary", s.Addr,
		"--user", s.User, "--identity", s.ClientKeyPath, "--known-hosts", s.KnownHostsPath,
		"--source", src+"/", "--target", dst+"/", "--state-dir", filepath.Join(base, "state"),
		"--pause-file", filepath.Join(base, "paused"), "--log-file", "")
	if code != 23 || !strings.Contains(out, "some files were not transferred") || !strings.Contains(out, "conf.d/secret.ini") {
		t.Errorf("exit %d, output:\n%s\nwant 23 naming conf.d/secret.ini", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "conf.d/a.ini")); err != nil || string(b) != "conf.d/a.ini" {
		t.Errorf("a.ini = %q, %v; want applied", b, err)
	}
}

// TestSyncOnceSaysWhatItDid: "sync --once" printed nothing when in sync, and a failure
// three times (issue 12, bug 8). It prints one summary line, and an error once.
func TestSyncOnceSaysWhatItDid(t *testing.T) {
	s := testenv.NewSSHD(t, testenv.SSHDOptions{User: "nobody", Config: []string{"ForceCommand internal-sftp"}})
	base := t.TempDir()
	for _, d := range []string{s.Dir, base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, dst := filepath.Join(base, "primary"), filepath.Join(base, "secondary")
	if err := os.MkdirAll(filepath.Join(src, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "conf.d", "a.ini"), []byte("[x]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(identity string) []string {
		return []string{"sync", "--once", "--xroad-dir", filepath.Join(base, "none"), "--primary", s.Addr,
			"--user", s.User, "--identity", identity, "--known-hosts", s.KnownHostsPath,
			"--source", src + "/", "--target", dst + "/", "--state-dir", filepath.Join(base, "state"),
			"--pause-file", filepath.Join(base, "paused"), "--log-file", ""}
	}
	code, out := capture(t, args(s.ClientKeyPath)...)
	if code != 0 || !strings.HasPrefix(out, "applied ") || strings.Count(out, "\n") != 1 {
		t.Errorf("first pass: exit %d, output %q; want exit 0 and one line \"applied ...\"", code, out)
	}
	code, out = capture(t, args(s.ClientKeyPath)...)
	if want := "in sync with " + s.Addr + ":" + src + "/: "; code != 0 || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
		t.Errorf("second pass: exit %d, output %q; want exit 0 and one line starting %q", code, out, want)
	}
	bad := filepath.Join(base, "not-a-key")
	if err := os.WriteFile(bad, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = capture(t, args(bad)...)
	if code != 1 || strings.Count(out, "no key found") != 1 || !strings.HasPrefix(out, "lbagent: ") {
		t.Errorf("failed pass: exit %d, output:\n%s\nwant exit 1 and the error once, as \"lbagent: ...\"", code, out)
	}
}
