package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// unitSettings reads a unit file's Key=Value lines; a key set twice keeps every value.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[strings.TrimSpace(k)] = append(out[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// unitProblems lists what a unit gets wrong against X-Road's conventions: nothing may hide
// the guide's pause flag /var/tmp/xroad/sync-disabled (PrivateTmp), and the hardening stays.
func unitProblems(s map[string][]string) []string {
	var p []string
	last := func(k string) string {
		if v := s[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	switch strings.ToLower(last("PrivateTmp")) {
	case "yes", "true", "on", "1":
		p = append(p, "PrivateTmp hides /var/tmp/xroad/sync-disabled")
	}
	for _, v := range append(s["InaccessiblePaths"], s["TemporaryFileSystem"]...) {
		if strings.Contains(v, "/var/tmp") {
			p = append(p, "/var/tmp hidden: "+v)
		}
	}
	if last("ProtectSystem") != "strict" {
		p = append(p, "ProtectSystem="+last("ProtectSystem")+"; want strict")
	}
	if last("NoNewPrivileges") != "yes" {
		p = append(p, "NoNewPrivileges not yes")
	}
	return p
}

func TestUnitSettings(t *testing.T) {
	units, _ := filepath.Glob(filepath.Join(srcRoot, "deploy/systemd/*.service"))
	if len(units) == 0 {
		t.Fatal("no unit in deploy/systemd")
	}
	for _, u := range units {
		if p := unitProblems(unitSettings(t, u)); len(p) > 0 {
			t.Errorf("%s: %s", filepath.Base(u), strings.Join(p, "; "))
		}
	}

	s := unitSettings(t, filepath.Join(srcRoot, "deploy/systemd/lbagent.service"))
	for k, want := range map[string]string{
		"Type":                    "notify",
		"ExecStart":               "/usr/bin/lbagent run",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"StateDirectory":          "lbagent",
		"ProtectSystem":           "strict",
		"ReadWritePaths":          "/etc -/var/log/xroad -/var/lib/xroad/.ssh -/run/haproxy",
		"CapabilityBoundingSet":   "CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH",
		"AmbientCapabilities":     "",
		"NoNewPrivileges":         "yes",
		"PrivateTmp":              "no",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
	} {
		if got := s[k]; len(got) != 1 || got[0] != want {
			t.Errorf("lbagent.service %s = %q; want exactly %q", k, got, want)
		}
	}

	// The check itself fails a unit that hides /var/tmp.
	bad := filepath.Join(t.TempDir(), "bad.service")
	if err := os.WriteFile(bad, []byte("[Service]\nExecStart=/bin/true\nProtectSystem=strict\nNoNewPrivileges=yes\nPrivateTmp=yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := unitProblems(unitSettings(t, bad)); !slices.Contains(p, "PrivateTmp hides /var/tmp/xroad/sync-disabled") {
		t.Errorf("a PrivateTmp unit passes: %v", p)
	}
}

// TestUnitsVerify runs systemd-analyze verify on every unit, with the programs' paths
// pointing at freshly built ones (verify wants ExecStart's program to exist); any output,
// warnings included, fails.
func TestUnitsVerify(t *testing.T) {
	analyze := testenv.Require(t, "systemd-analyze")
	bin := t.TempDir()
	if err := goBuild(srcRoot, runtime.GOARCH, "test", bin); err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob(filepath.Join(srcRoot, "deploy/systemd/*.service"))
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, p := range programs {
			text = strings.ReplaceAll(text, "/usr/bin/"+p, filepath.Join(bin, p))
		}
		dst := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(dst, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, dst)
	}
	// --man=no: the man pages the units name are installed by the package, not on this machine.
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %v: %v\n%s", paths, err, out)
	}

	// verify catches a broken unit.
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, []byte("[Service]\nType=notfy\nExecStart="+filepath.Join(bin, "lbagent")+" run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", bad).CombinedOutput(); err == nil && len(strings.TrimSpace(string(out))) == 0 {
		t.Error("systemd-analyze verify accepts Type=notfy")
	}
}
