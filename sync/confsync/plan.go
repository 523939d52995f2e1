package confsync

import (
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Item is one line of the pass log, in rsync's itemize format ("%i %n%L").
type Item struct {
	Code string // 11 characters, e.g. ">f..t......", or "*deleting"
	Path string
	Link string // symlink target, shown as " -> target"
	Dir  bool
}

// String renders the item like rsync's --log-file does.
func (it Item) String() string {
	name := escapeName(it.Path)
	if it.Dir {
		name += "/"
	}
	if it.Link != "" {
		name += " -> " + escapeName(it.Link)
	}
	return it.Code + strings.Repeat(" ", max(0, 11-len(it.Code))) + " " + name
}

// Refusal is a remote entry that was not copied because it is unsafe.
type Refusal struct {
	Path   string
	Reason string
}

// attrChange sets permissions, owner or times of an existing local entry to the remote's.
type attrChange struct {
	want, have Entry
	mode, own  bool
}

// Plan is what one pass changes on this node.
type Plan struct {
	Remove  []Entry // topmost local entries to delete (their subtrees go with them)
	Mkdir   []Entry // directories to create, parents first
	Fetch   []Entry // regular files to download (new or changed)
	Symlink []Entry // symlinks to create or replace
	Attrs   []attrChange
	Dirs    []Entry // directories whose times are set after the changes, deepest first
	Refused []Refusal
	Items   []Item
}

// Empty reports whether the plan changes nothing apart from directory times.
func (p *Plan) Empty() bool {
	return len(p.Remove)+len(p.Mkdir)+len(p.Fetch)+len(p.Symlink)+len(p.Attrs) == 0
}

// Idle reports whether the pass has nothing at all to do.
func (p *Plan) Idle() bool { return p.Empty() && len(p.Dirs) == 0 }

// Changes counts the entries the plan creates, updates, deletes or re-attributes
// (directory times alone are not counted).
func (p *Plan) Changes() int {
	n := 0
	for _, it := range p.Items {
		if it.Code != ".d..t......" {
			n++
		}
	}
	return n
}

// drop removes skipped files from the plan (they are neither fetched nor reported).
func (p *Plan) drop(skipped []Skip) {
	if len(skipped) == 0 {
		return
	}
	gone := map[string]bool{}
	for _, s := range skipped {
		gone[s.Path] = true
	}
	fetch := p.Fetch[:0]
	for _, e := range p.Fetch {
		if !gone[e.Path] {
			fetch = append(fetch, e)
		}
	}
	p.Fetch = fetch
	items := p.Items[:0]
	for _, it := range p.Items {
		if !gone[it.Path] || it.Dir {
			items = append(items, it)
		}
	}
	p.Items = items
}

// FetchBytes is the total size of the files to download.
func (p *Plan) FetchBytes() int64 {
	var n int64
	for _, e := range p.Fetch {
		n += e.Size
	}
	return n
}

// makePlan compares the remote tree with the local one: rsync's quick check (size and
// mtime) for contents, plus permissions, plus owner and group when keepOwner is set.
// Files in differs (racy files whose content was compared) are fetched even when the
// quick check passes, itemized ">fc" like rsync --checksum does.
func makePlan(remote, local Tree, keepOwner bool, differs map[string]bool) *Plan {
	p := &Plan{}
	refused := map[string]bool{}
	replaced := map[string]bool{} // local entries removed because their type changed
	for _, rel := range remote.sortedPaths() {
		r := remote[rel]
		if !supported(r.Mode) {
			p.Refused = append(p.Refused, Refusal{Path: rel, Reason: "special file (" + typeName(r.Mode) + ") not copied"})
			refused[rel] = true
			continue
		}
		if r.Mode&fs.ModeSymlink != 0 {
			if why := unsafeLink(rel, r.Link); why != "" {
				p.Refused = append(p.Refused, Refusal{Path: rel, Reason: why})
				refused[rel] = true
				continue
			}
		}
		l, ok := local[rel]
		if ok && l.Mode.Type() != r.Mode.Type() {
			p.Remove = append(p.Remove, l)
			p.Items = append(p.Items, Item{Code: "*deleting", Path: rel, Dir: l.Mode.IsDir()})
			replaced[rel] = true
			ok = false
		}
		switch {
		case !ok:
			p.addNew(r)
		case r.Mode.IsRegular():
			s, t := r.Size != l.Size, r.Mtime != l.Mtime
			c := !s && !t && differs[rel]
			if s || t || c {
				p.Fetch = append(p.Fetch, r)
				p.Items = append(p.Items, Item{Code: itemCode(">f", c, s, t, r, l, keepOwner), Path: rel})
			} else if a, ok := attrDiff(r, l, keepOwner); ok {
				p.Attrs = append(p.Attrs, a)
				p.Items = append(p.Items, Item{Code: itemCode(".f", false, false, false, r, l, keepOwner), Path: rel})
			}
		case r.Mode.IsDir():
			if a, ok := attrDiff(r, l, keepOwner); ok {
				p.Attrs = append(p.Attrs, a)
				p.Items = append(p.Items, Item{Code: itemCode(".d", false, false, false, r, l, keepOwner), Path: rel, Dir: true})
			}
		default: // symlink
			if r.Link != l.Link {
				p.Symlink = append(p.Symlink, r)
				p.Items = append(p.Items, Item{Code: "cLc........", Path: rel, Link: r.Link})
			} else if keepOwner && (r.UID != l.UID || r.GID != l.GID) {
				p.Attrs = append(p.Attrs, attrChange{want: r, have: l, own: true})
				p.Items = append(p.Items, Item{Code: itemCode(".L", false, false, false, r, l, keepOwner), Path: rel, Link: r.Link})
			}
		}
	}
	// Local entries the primary no longer has; a refused remote symlink keeps what is here.
	var gone []string
	for rel := range local {
		if _, ok := remote[rel]; !ok && !refused[rel] {
			gone = append(gone, rel)
		}
	}
	sort.Strings(gone)
	for _, rel := range gone {
		if coveredBy(rel, gone) || coveredByMap(rel, replaced) {
			continue
		}
		l := local[rel]
		p.Remove = append(p.Remove, l)
		p.Items = append(p.Items, Item{Code: "*deleting", Path: rel, Dir: l.Mode.IsDir()})
	}
	p.dirTimes(remote, local) // after the deletions: they move their directories' times too
	sort.SliceStable(p.Items, func(i, j int) bool { return p.Items[i].Path < p.Items[j].Path })
	return p
}

// dirTimes lists the remote directories whose local time must be set after the changes:
// new ones, ones whose time differs, and parents of changed entries (creating, renaming
// or removing an entry moves its directory's time). Runs after the other changes are planned.
func (p *Plan) dirTimes(remote, local Tree) {
	touched := map[string]bool{}
	for _, list := range [][]Entry{p.Remove, p.Mkdir, p.Fetch, p.Symlink} {
		for _, e := range list {
			touched[path.Dir(e.Path)] = true
		}
	}
	itemOf := map[string]int{}
	for i, it := range p.Items {
		if it.Dir && it.Code != "*deleting" {
			itemOf[it.Path] = i
		}
	}
	for _, rel := range remote.sortedPaths() {
		r := remote[rel]
		if !r.Mode.IsDir() {
			continue
		}
		l, ok := local[rel]
		differs := ok && l.Mode.IsDir() && l.Mtime != r.Mtime
		if !ok || !l.Mode.IsDir() || differs || touched[rel] {
			p.Dirs = append(p.Dirs, r)
		}
		if !differs {
			continue
		}
		if i, ok := itemOf[rel]; ok {
			b := []byte(p.Items[i].Code)
			b[4] = 't'
			p.Items[i].Code = string(b)
		} else {
			p.Items = append(p.Items, Item{Code: ".d..t......", Path: rel, Dir: true})
		}
	}
	// Deepest first, so setting a child's time never moves its parent's afterwards.
	sort.SliceStable(p.Dirs, func(i, j int) bool {
		return strings.Count(p.Dirs[i].Path, "/") > strings.Count(p.Dirs[j].Path, "/")
	})
}

func (p *Plan) addNew(r Entry) {
	switch {
	case r.Mode.IsDir():
		p.Mkdir = append(p.Mkdir, r)
		p.Items = append(p.Items, Item{Code: "cd+++++++++", Path: r.Path, Dir: true})
	case r.Mode.IsRegular():
		p.Fetch = append(p.Fetch, r)
		p.Items = append(p.Items, Item{Code: ">f+++++++++", Path: r.Path})
	default:
		p.Symlink = append(p.Symlink, r)
		p.Items = append(p.Items, Item{Code: "cL+++++++++", Path: r.Path, Link: r.Link})
	}
}

// coveredBy reports whether an ancestor of rel is in the sorted list (then removing the
// ancestor removes rel too).
func coveredBy(rel string, sorted []string) bool {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		i := sort.SearchStrings(sorted, d)
		if i < len(sorted) && sorted[i] == d {
			return true
		}
	}
	return false
}

func coveredByMap(rel string, m map[string]bool) bool {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if m[d] {
			return true
		}
	}
	return false
}

// permBits are the mode bits a sync keeps.
const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

func attrDiff(r, l Entry, keepOwner bool) (attrChange, bool) {
	a := attrChange{want: r, have: l}
	a.mode = r.Mode&permBits != l.Mode&permBits
	a.own = keepOwner && (r.UID != l.UID || r.GID != l.GID)
	return a, a.mode || a.own
}

// itemCode builds rsync's YXcstpoguax string for an update of an existing entry.
func itemCode(yx string, c, s, t bool, r, l Entry, keepOwner bool) string {
	b := []byte(yx + ".........")
	flag := func(i int, on bool, ch byte) {
		if on {
			b[i] = ch
		}
	}
	flag(2, c, 'c')
	flag(3, s, 's')
	flag(4, t, 't')
	flag(5, r.Mode&permBits != l.Mode&permBits, 'p')
	flag(6, keepOwner && r.UID != l.UID, 'o')
	flag(7, keepOwner && r.GID != l.GID, 'g')
	return string(b)
}

// typeName names a file type that is not copied.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "unknown type " + m.Type().String()
}

// unsafeLink explains why a symlink at rel pointing to target would lead out of the tree
// ("" when it stays inside).
func unsafeLink(rel, target string) string {
	if target == "" {
		return "empty symlink target"
	}
	if strings.HasPrefix(target, "/") {
		return "absolute symlink target " + target
	}
	// Only "../" steps first, then names: a ".." after a name could climb out through a
	// symlinked component, so it is refused even when the text looks harmless.
	depth := strings.Count(rel, "/") // real directories between the root and the link
	named := false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if named {
				return "symlink target " + target + " has '..' after a name"
			}
			depth--
			if depth < 0 {
				return "symlink target " + target + " leaves the tree"
			}
		default:
			named = true
		}
	}
	return ""
}

// sameTrees is the idle pass's fast path: true when the local tree already matches the
// remote one in everything makePlan compares (directory times included).
func sameTrees(remote, local Tree, keepOwner bool) bool {
	if len(remote) != len(local) {
		return false
	}
	for rel, r := range remote {
		l, ok := local[rel]
		if !ok || l.Mode.Type() != r.Mode.Type() || l.Mode&permBits != r.Mode&permBits {
			return false
		}
		if l.Mtime != r.Mtime && r.Mode&fs.ModeSymlink == 0 { // symlink times are not kept
			return false
		}
		if r.Mode.IsRegular() && l.Size != r.Size || r.Link != l.Link {
			return false
		}
		if keepOwner && (r.UID != l.UID || r.GID != l.GID) {
			return false
		}
	}
	return true
}
