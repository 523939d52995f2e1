package confsync

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// After a pass the target holds the primary's files (minus excludes) and this node's
// excluded files, nothing else: the state lives in state-dir, the staging area existed
// only during the pass, and the state directory an older version kept in the target is
// deleted like any file the primary does not have.
func TestNothingOfOursInTheTarget(t *testing.T) {
	r := newRig(t)
	r.write(t, "conf.d/local.ini", "x", 0o644)
	r.write(t, "signer/keyconf.xml", "k", 0o644)
	for rel, c := range map[string]string{"conf.d/node.ini": "[node]\ntype=slave\n", ".lbagent-sync/racy": "old\x00", ".lbagent-sync/lock": ""} {
		p := filepath.Join(r.dst, rel)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w := r.worker(t)
	r.once(t, w)
	r.write(t, "signer/keyconf.xml", "k2", 0o644) // a second pass with changes
	r.once(t, w)
	var got []string
	err := filepath.Walk(r.dst, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != r.dst {
			got = append(got, strings.TrimPrefix(p, r.dst+"/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{"conf.d", "conf.d/local.ini", "conf.d/node.ini", "signer", "signer/keyconf.xml"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("target holds %q; want %q", got, want)
	}
	siblings, _ := filepath.Glob(filepath.Join(filepath.Dir(r.dst), ".*"))
	if len(siblings) != 0 {
		t.Errorf("hidden entries beside the target after the pass: %v", siblings)
	}
	for _, name := range []string{"lock", "racy"} {
		if !exists(filepath.Join(stateDirFor(r.cfg.StateDir, r.dst), name)) {
			t.Errorf("state directory lacks %s", name)
		}
	}
}

func TestStateDirFor(t *testing.T) {
	for _, tt := range []struct{ target, want string }{
		{"/etc/xroad", "/s/etc-xroad"},
		{"/srv/a-b/c", `/s/srv-a\x2db-c`},
		{"/srv/a/b-c", `/s/srv-a-b\x2dc`},
	} {
		if got := stateDirFor("/s", tt.target); got != tt.want {
			t.Errorf("stateDirFor(%q) = %q; want %q", tt.target, got, tt.want)
		}
	}
	if got := stagingDirFor("/etc/xroad"); got != "/etc/.xroad.lbagent-sync" {
		t.Errorf("stagingDirFor = %q", got)
	}
}
