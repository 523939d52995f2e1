package confsync

import (
	"bytes"
	"io"
	"io/fs"
	"strconv"
)

// Owners by name, as rsync does without --numeric-ids: a file's owner and group are the
// primary's user and group names, resolved on this node (the xroad account may have
// another uid here). A name unknown on either side keeps its number. The primary's names
// come from its /etc/passwd and /etc/group, read over SFTP.

// idMap maps the primary's uids and gids to this node's.
type idMap struct{ uid, gid map[uint32]uint32 }

// Where the account databases are (tests point them elsewhere).
var (
	remotePasswd, remoteGroup = "/etc/passwd", "/etc/group"
	localPasswd, localGroup   = "/etc/passwd", "/etc/group"
)

// loadIDMap reads both nodes' account databases; an unreadable one maps nothing.
func loadIDMap(src fileSource, readLocal func(string) ([]byte, error)) idMap {
	read := func(p string) []byte {
		f, err := src.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		b, _ := io.ReadAll(io.LimitReader(f, 16<<20))
		return b
	}
	local := func(p string) []byte { b, _ := readLocal(p); return b }
	return idMap{
		uid: mapIDs(parseIDs(read(remotePasswd)), parseIDs(local(localPasswd))),
		gid: mapIDs(parseIDs(read(remoteGroup)), parseIDs(local(localGroup))),
	}
}

// parseIDs reads name -> id from passwd or group lines ("name:x:id:...").
func parseIDs(b []byte) map[string]uint32 {
	out := map[string]uint32{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := bytes.SplitN(line, []byte(":"), 4)
		if len(f) < 3 || len(f[0]) == 0 || f[0][0] == '#' {
			continue
		}
		if id, err := strconv.ParseUint(string(f[2]), 10, 32); err == nil {
			if _, dup := out[string(f[0])]; !dup {
				out[string(f[0])] = uint32(id)
			}
		}
	}
	return out
}

// mapIDs pairs the ids that differ: remote id -> local id of the same name (the first
// name of an id wins, as getpwuid returns it).
func mapIDs(remote, local map[string]uint32) map[uint32]uint32 {
	out := map[uint32]uint32{}
	seen := map[uint32]bool{}
	for name, rid := range remote {
		if seen[rid] {
			continue
		}
		if lid, ok := local[name]; ok {
			seen[rid] = true
			if lid != rid {
				out[rid] = lid
			}
		}
	}
	return out
}

func (m idMap) apply(e Entry) Entry {
	if id, ok := m.uid[e.UID]; ok {
		e.UID = id
	}
	if id, ok := m.gid[e.GID]; ok {
		e.GID = id
	}
	return e
}

func (m idMap) empty() bool { return len(m.uid) == 0 && len(m.gid) == 0 }

// specialBits are dropped unless PreserveSpecialBits.
const specialBits = fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
