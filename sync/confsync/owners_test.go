package confsync

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Running as root, owners follow names: the primary's xroad (uid 4001 there) is this
// node's xroad (uid 5001 here); an id without a name on both sides keeps its number.
// setuid, setgid and sticky bits are dropped unless asked for.
func TestOwnersByNameAndSpecialBits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners are kept only when running as root")
	}
	r := newRig(t)
	etc := filepath.Join(filepath.Dir(r.src), "etc")
	local := t.TempDir()
	for p, c := range map[string]string{
		filepath.Join(etc, "passwd"):   "root:x:0:0::/root:/bin/sh\nxroad:x:4001:4001::/var/lib/xroad:/bin/sh\n",
		filepath.Join(etc, "group"):    "root:x:0:\nxroad:x:4001:\n",
		filepath.Join(local, "passwd"): "root:x:0:0::/root:/bin/sh\nxroad:x:5001:5002::/var/lib/xroad:/bin/sh\n",
		filepath.Join(local, "group"):  "root:x:0:\nxroad:x:5002:\n",
	} {
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := [4]string{remotePasswd, remoteGroup, localPasswd, localGroup}
	remotePasswd, remoteGroup = filepath.Join(etc, "passwd"), filepath.Join(etc, "group")
	localPasswd, localGroup = filepath.Join(local, "passwd"), filepath.Join(local, "group")
	defer func() { remotePasswd, remoteGroup, localPasswd, localGroup = old[0], old[1], old[2], old[3] }()

	r.write(t, "signer/keyconf.xml", "k", 0o640)
	r.write(t, "bin/tool", "t", 0o755)
	r.write(t, "nameless", "n", 0o644)
	for rel, ids := range map[string][2]int{"signer/keyconf.xml": {4001, 4001}, "bin/tool": {0, 4001}, "nameless": {4002, 4003}} {
		if err := os.Chown(filepath.Join(r.src, rel), ids[0], ids[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(r.src, "bin/tool"), 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(r.src, "bin"), 0o755|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	check := func(cfgName string, want map[string][3]uint32) {
		t.Helper()
		for rel, w := range want {
			fi, err := os.Lstat(filepath.Join(r.dst, rel))
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != w[0] || st.Gid != w[1] || st.Mode&0o7777 != w[2] {
				t.Errorf("%s: %s is %d:%d %o; want %d:%d %o", cfgName, rel, st.Uid, st.Gid, st.Mode&0o7777, w[0], w[1], w[2])
			}
		}
	}
	w := r.worker(t)
	r.once(t, w)
	check("default", map[string][3]uint32{
		"signer/keyconf.xml": {5001, 5002, 0o640},
		"bin/tool":           {0, 5002, 0o755},
		"bin":                {0, 0, 0o755},
		"nameless":           {4002, 4003, 0o644},
	})
	if res := r.once(t, w); len(res.Items) != 0 {
		t.Errorf("second pass items %q; want none (mapped owners are stable)", codes(res.Items))
	}

	r.cfg.NumericOwners, r.cfg.PreserveSpecialBits = true, true
	w2 := r.worker(t)
	r.once(t, w2)
	check("numeric-owners, preserve-special-bits", map[string][3]uint32{
		"signer/keyconf.xml": {4001, 4001, 0o640},
		"bin/tool":           {0, 4001, 0o6755},
		"bin":                {0, 0, 0o1755},
	})
}
