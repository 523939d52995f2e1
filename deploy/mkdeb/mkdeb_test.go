package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

const srcRoot = "../.."

func TestDebVersion(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"1.2.0", "1.2.0"},
		{"v1.2.0", "1.2.0"},
		{"v1.2.0-3-gabc1234", "1.2.0+git3.abc1234"},
		{"v1.2.0-3-gabc1234-dirty", "1.2.0+git3.abc1234+dirty"},
		{"6a4e393", "0.0~git6a4e393"},
		{"6a4e393-dirty", "0.0~git6a4e393+dirty"},
	} {
		got, err := debVersion(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("debVersion(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "dev", "1.0 beta", "v1/2"} {
		if got, err := debVersion(bad); err == nil {
			t.Errorf("debVersion(%q) = %q; want an error", bad, got)
		}
	}
}

// TestSourceFilesGlobs: parts that appear in the tree later (nginx's Lua files, HAProxy's,
// the lbadapter-watch unit) are packaged by glob; nothing lands in /etc/xroad.
func TestSourceFilesGlobs(t *testing.T) {
	src := t.TempDir()
	for _, f := range []string{
		"deploy/systemd/lbagent.service", "deploy/systemd/lbadapter-watch.service",
		"deploy/logrotate/lbagent-sync", "examples/cluster.ini", "docs/sync.md", "README.md",
		"deploy/debian/copyright", "nginx/lua/lbkit.lua", "haproxy/lua/lbkit.lua", "nginx/lua/README",
	} {
		p := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sourceFiles(src)
	if err != nil {
		t.Fatal(err)
	}
	dsts := map[string]string{}
	for _, g := range got {
		dsts[g.dst] = g.typ
	}
	for _, want := range []string{
		"/lib/systemd/system/lbagent.service", "/lib/systemd/system/lbadapter-watch.service",
		"/usr/share/lbkit/lua/lbkit.lua", "/usr/share/lbkit/haproxy/lbkit.lua",
		"/usr/share/doc/lbkit/examples/cluster.ini", "/usr/share/doc/lbkit/copyright",
	} {
		if _, ok := dsts[want]; !ok {
			t.Errorf("%s not packaged; got %v", want, dsts)
		}
	}
	if typ := dsts["/etc/logrotate.d/lbagent-sync"]; typ != "config|noreplace" {
		t.Errorf("logrotate file type %q; want config|noreplace", typ)
	}
	if _, ok := dsts["/usr/share/lbkit/lua/README"]; ok {
		t.Error("nginx/lua/README packaged; only *.lua should be")
	}

	if err := os.Remove(filepath.Join(src, "examples/cluster.ini")); err != nil {
		t.Fatal(err)
	}
	if _, err := sourceFiles(src); err == nil || !strings.Contains(err.Error(), "examples/*.ini") {
		t.Errorf("missing examples: err %v; want one naming examples/*.ini", err)
	}
}

// dpkgRoot is a throw-away root for dpkg --root: the package's maintainer scripts run
// outside a chroot with DPKG_ROOT set (--force-script-chrootless), so nothing is installed on
// the machine itself.
type dpkgRoot struct {
	t    *testing.T
	dir  string
	dpkg string
}

func newDpkgRoot(t *testing.T) *dpkgRoot {
	r := &dpkgRoot{t: t, dir: t.TempDir(), dpkg: testenv.Require(t, "dpkg")}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"} {
		if err := os.MkdirAll(filepath.Join(r.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r.dir, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *dpkgRoot) run(args ...string) string {
	r.t.Helper()
	base := []string{"--root=" + r.dir, "--log=" + filepath.Join(r.dir, "var/log/dpkg.log"),
		"--force-script-chrootless", "--force-not-root"}
	out, err := exec.Command(r.dpkg, append(base, args...)...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("dpkg %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (r *dpkgRoot) path(p string) string { return filepath.Join(r.dir, p) }

func (r *dpkgRoot) exists(p string) bool {
	_, err := os.Lstat(r.path(p))
	return err == nil
}

// TestPackage builds the amd64 package twice (1.0.0 and 1.0.1), reads its control data and
// contents with dpkg-deb, runs lintian (errors fail) and installs, upgrades, removes and
// purges it in a throw-away root.
func TestPackage(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("packages are built for amd64 and arm64, not %s", runtime.GOARCH)
	}
	dpkgDeb := testenv.Require(t, "dpkg-deb")
	lintian := testenv.Require(t, "lintian")
	bin := t.TempDir()
	if err := goBuild(srcRoot, runtime.GOARCH, "1.0.0", bin); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	v1, err := build(options{Version: "v1.0.0", Arch: runtime.GOARCH, BinDir: bin, SrcDir: srcRoot, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if want := "lbkit_1.0.0-1_" + runtime.GOARCH + ".deb"; filepath.Base(v1) != want {
		t.Errorf("package file %s; want %s", filepath.Base(v1), want)
	}

	info, err := exec.Command(dpkgDeb, "-I", v1).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -I: %v\n%s", err, info)
	}
	for _, want := range []string{"Package: lbkit", "Version: 1.0.0-1", "Architecture: " + runtime.GOARCH,
		"Maintainer: ", "Description: load-balancer support", " postinst ", " prerm ", " postrm ", " conffiles "} {
		if !strings.Contains(string(info), want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	conffiles, err := exec.Command(dpkgDeb, "-I", v1, "conffiles").CombinedOutput()
	if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/logrotate.d/lbagent-sync" {
		t.Errorf("conffiles = %q, %v; want /etc/logrotate.d/lbagent-sync", conffiles, err)
	}

	list, err := exec.Command(dpkgDeb, "-c", v1).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v\n%s", err, list)
	}
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		f := strings.Fields(line)
		p := strings.TrimPrefix(f[len(f)-1], ".")
		paths = append(paths, p)
		if strings.HasPrefix(p, "/etc/") && p != "/etc/" && !strings.HasPrefix(p, "/etc/logrotate.d/") {
			t.Errorf("package writes %s: only /etc/logrotate.d belongs to it (never /etc/xroad)", p)
		}
		if strings.HasPrefix(p, "/usr/bin/") && p != "/usr/bin/" && f[0] != "-rwxr-xr-x" {
			t.Errorf("%s mode %s; want -rwxr-xr-x", p, f[0])
		}
	}
	want := []string{
		"/usr/bin/lbagent", "/usr/bin/lbadapter",
		"/lib/systemd/system/lbagent.service", "/lib/systemd/system/lbagent-sync.service",
		"/etc/logrotate.d/lbagent-sync",
		"/usr/share/doc/lbkit/copyright", "/usr/share/doc/lbkit/changelog.Debian.gz",
		"/usr/share/doc/lbkit/README.md", "/usr/share/doc/lbkit/examples/cluster.ini",
		"/usr/share/man/man1/lbagent.1.gz", "/usr/share/man/man1/lbagent-run.1.gz",
		"/usr/share/man/man1/lbadapter.1.gz", "/usr/share/man/man1/lbadapter-status.1.gz",
		"/usr/share/bash-completion/completions/lbagent", "/usr/share/bash-completion/completions/lbadapter",
		"/usr/share/zsh/vendor-completions/_lbagent", "/usr/share/zsh/vendor-completions/_lbadapter",
	}
	// Parts other branches add: packaged when their files exist in the tree.
	for pattern, dst := range map[string]string{"nginx/lua/*.lua": "/usr/share/lbkit/lua/",
		"haproxy/lua/*.lua": "/usr/share/lbkit/haproxy/", "deploy/systemd/*.service": "/lib/systemd/system/"} {
		m, _ := filepath.Glob(filepath.Join(srcRoot, pattern))
		for _, f := range m {
			want = append(want, dst+filepath.Base(f))
		}
	}
	for _, w := range want {
		if !slices.Contains(paths, w) {
			t.Errorf("package lacks %s", w)
		}
	}

	lout, err := exec.Command(lintian, "--tag-display-limit", "0", v1).CombinedOutput()
	var lerrs []string
	for _, line := range strings.Split(string(lout), "\n") {
		if strings.HasPrefix(line, "E: ") {
			lerrs = append(lerrs, line)
		}
	}
	if len(lerrs) > 0 {
		t.Errorf("lintian errors:\n%s", strings.Join(lerrs, "\n"))
	} else if err != nil {
		t.Errorf("lintian: %v\n%s", err, lout)
	}
	t.Logf("lintian:\n%s", lout)

	// Install, upgrade, remove, purge in a throw-away root.
	r := newDpkgRoot(t)
	r.run("-i", v1)
	for _, p := range want {
		if !r.exists(p) {
			t.Errorf("installed root lacks %s", p)
		}
	}
	if r.exists("etc/xroad") {
		t.Error("installing created /etc/xroad")
	}
	if out, err := exec.Command(r.path("usr/bin/lbagent"), "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "1.0.0") {
		t.Errorf("installed lbagent --version: %q, %v", out, err)
	}
	// The admin edits the conffile and the agent keeps state; an upgrade keeps both.
	edited := []byte("# the admin's own rotation\n")
	if err := os.WriteFile(r.path("etc/logrotate.d/lbagent-sync"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.path("var/lib/lbagent"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path("var/lib/lbagent/maintenance"), []byte("true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2, err := build(options{Version: "v1.0.1", Arch: runtime.GOARCH, BinDir: bin, SrcDir: srcRoot, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	r.run("-i", v2)
	if st := r.run("-s", "lbkit"); !strings.Contains(st, "Version: 1.0.1-1") || !strings.Contains(st, "install ok installed") {
		t.Errorf("after the upgrade dpkg -s says:\n%s", st)
	}
	if got, _ := os.ReadFile(r.path("etc/logrotate.d/lbagent-sync")); string(got) != string(edited) {
		t.Errorf("upgrade overwrote the edited conffile: %q", got)
	}
	if !r.exists("var/lib/lbagent/maintenance") {
		t.Error("upgrade removed /var/lib/lbagent")
	}
	r.run("--remove", "lbkit")
	if r.exists("usr/bin/lbagent") {
		t.Error("remove left /usr/bin/lbagent")
	}
	if !r.exists("etc/logrotate.d/lbagent-sync") || !r.exists("var/lib/lbagent/maintenance") {
		t.Error("remove (not purge) deleted the conffile or the agent's state")
	}
	r.run("--purge", "lbkit")
	if r.exists("etc/logrotate.d/lbagent-sync") {
		t.Error("purge left the conffile")
	}
	if r.exists("var/lib/lbagent") {
		t.Error("purge left /var/lib/lbagent (postrm did not run with DPKG_ROOT)")
	}
}

// TestPackageOtherArch builds the package for the architecture this machine is not (make deb
// builds both): its programs are cross-built, man pages come from a native build.
func TestPackageOtherArch(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds both programs")
	}
	dpkgDeb := testenv.Require(t, "dpkg-deb")
	arch := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	if arch == "" {
		t.Skipf("no package architecture pairs with %s", runtime.GOARCH)
	}
	p, err := build(options{Version: "1.0.0", Arch: arch, SrcDir: srcRoot, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(dpkgDeb, "-f", p, "Architecture").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != arch {
		t.Errorf("Architecture = %q, %v; want %s", got, err, arch)
	}
	list, err := exec.Command(dpkgDeb, "-c", p).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "./usr/share/man/man1/lbagent.1.gz") {
		t.Errorf("dpkg-deb -c: %v; want the man pages in\n%s", err, list)
	}
}
