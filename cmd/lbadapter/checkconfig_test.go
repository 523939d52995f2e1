package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfig: the shipped example loads and is summarised; a typo exits 2 with the
// file, line and a suggestion; warnings are printed for a config that loads.
func TestCheckConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-c", "../../examples/cluster.ini", "check-config"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"configuration OK: ../../examples/cluster.ini: 1 balancer(s), 3 node(s), 0 warning(s)\n",
		"  node ss1: 10.0.0.11, primary, server ss1, health port 5588, agent port 5589\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "cluster.ini")
	if err := os.WriteFile(bad, []byte("[balancer]\ntype = haproxy\nruntime-api = /x\nbackend = b\n[node \"a\"]\naddress = 10.0.0.1\nrol = primary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	code := run([]string{"-c", bad, "check-config"}, &out, &errOut)
	want := "lbadapter: " + bad + `:7: unknown key "rol" in [node "a"]; did you mean "role"?` + "\n"
	if code != exitUsage || errOut.String() != want {
		t.Errorf("exit %d, %q; want exit %d, %q", code, errOut.String(), exitUsage, want)
	}

	two := filepath.Join(dir, "two.ini")
	if err := os.WriteFile(two, []byte("[balancer]\ntype = haproxy\nruntime-api = /x\nbackend = b\n"+
		"[node \"a\"]\naddress = 10.0.0.1\nrole = primary\n[node \"b\"]\naddress = 10.0.0.2\nrole = PRIMARY ; typo of secondary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"-c", two, "check-config"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "warning: 2 nodes have role = primary (a, b): a cluster has one\n") {
		t.Errorf("exit %d, output %q; want the two-primaries warning", code, out.String())
	}
}
