package settings

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// xroadOwnFiles are conf.d files that are not read as X-Road system properties here:
// lbkit's own files, and local.ini, which is read last.
var xroadOwnFiles = map[string]bool{"node.ini": true, "lbagent.ini": true, "local.ini": true}

// XRoad is X-Road's system configuration: conf.d/*.ini (packaged defaults, then
// override-*.ini, each group in name order) with conf.d/local.ini last, so local.ini wins, as
// X-Road's SystemPropertiesLoader loads them, each file by X-Road's rules (XRoadRules).
// Keys lbkit does not use are kept and ignored, as X-Road ignores unknown properties.
type XRoad struct {
	files []string
	vals  map[string]map[string]Value
}

// LoadXRoad reads <xroadDir>/conf.d/*.ini. Missing files are fine (defaults apply); a file
// that cannot be parsed is an error naming it and the line.
func LoadXRoad(xroadDir string) (*XRoad, error) {
	confd := filepath.Join(xroadDir, "conf.d")
	matches, err := filepath.Glob(filepath.Join(confd, "*.ini"))
	if err != nil {
		return nil, err
	}
	var base, overrides []string
	var local bool
	for _, m := range matches {
		name := filepath.Base(m)
		switch {
		case name == "local.ini":
			local = true
		case xroadOwnFiles[name]:
		case strings.HasPrefix(name, "override-"):
			overrides = append(overrides, m)
		default:
			base = append(base, m)
		}
	}
	sort.Strings(base)
	sort.Strings(overrides)
	files := append(base, overrides...)
	if local {
		files = append(files, filepath.Join(confd, "local.ini"))
	}
	x := &XRoad{vals: map[string]map[string]Value{}}
	for _, p := range files {
		f, err := ReadFile(p, XRoadRules)
		if err != nil {
			return nil, err
		}
		x.add(f)
	}
	return x, nil
}

// ParseXRoad reads one X-Road INI file (named path in errors) from data.
func ParseXRoad(path string, data []byte) (*XRoad, error) {
	f, err := Parse(path, data, XRoadRules)
	if err != nil {
		return nil, err
	}
	x := &XRoad{vals: map[string]map[string]Value{}}
	x.add(f)
	return x, nil
}

// add merges f: a later file's value wins; within one file the first value of a repeated key
// counts (Commons Configuration's getString of a repeated key).
func (x *XRoad) add(f *File) {
	x.files = append(x.files, f.Path)
	inFile := map[string]bool{}
	for _, sec := range f.Sections {
		m := x.vals[sec.Name]
		if m == nil {
			m = map[string]Value{}
			x.vals[sec.Name] = m
		}
		for _, e := range sec.Entries {
			id := sec.Name + "\x00" + e.Key
			if inFile[id] {
				continue
			}
			inFile[id] = true
			m[e.Key] = Value{e.Value, f.Path, e.Line}
		}
	}
}

// Files are the files read, in order.
func (x *XRoad) Files() []string { return append([]string(nil), x.files...) }

// Get returns [section] key and where it was set.
func (x *XRoad) Get(section, key string) (Value, bool) {
	v, ok := x.vals[section][key]
	return v, ok
}

// String returns [section] key, or def when unset or empty.
func (x *XRoad) String(section, key, def string) string {
	if v, ok := x.Get(section, key); ok && v.Value != "" {
		return v.Value
	}
	return def
}

// Int returns [section] key as an integer from lo to hi, or def when unset or empty.
func (x *XRoad) Int(section, key string, def, lo, hi int) (int, error) {
	s := x.String(section, key, "")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, x.Error(section, key, "not an integer")
	}
	if n < lo || n > hi {
		return 0, x.Error(section, key, "want %d to %d", lo, hi)
	}
	return n, nil
}

// Bool returns [section] key as true/false (any case, as Java's Boolean.parseBoolean
// accepts), or def when unset or empty.
func (x *XRoad) Bool(section, key string, def bool) (bool, error) {
	switch strings.ToLower(x.String(section, key, "")) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, x.Error(section, key, "want true or false")
}

// Error returns an error about [section] key naming the file and line that set it.
func (x *XRoad) Error(section, key, format string, args ...any) error {
	v, ok := x.Get(section, key)
	if !ok {
		return errorf("conf.d", 0, "[%s] %s: %s", section, key, fmt.Sprintf(format, args...))
	}
	return errorf(v.Path, v.Line, "[%s] %s = %q: %s", section, key, v.Value, fmt.Sprintf(format, args...))
}
