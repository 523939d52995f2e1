package settings

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key declares one key of one of our files: its name and the check of its value. An empty
// value always means the key's default and is not checked.
type Key struct {
	Name  string
	Check Check
}

// Check validates a value; its error says what is wanted ("want a duration from 1ms to 1h").
type Check func(v string) error

// SectionSchema declares a section of one of our files. Named sections are [kind "NAME"].
type SectionSchema struct {
	Name  string
	Named bool // [Name "x"] (the NAME is checked by the file's owner); otherwise [Name]
	// NameOptional allows a Named section without a name too ([balancer] and [balancer "x"]).
	NameOptional bool
	Keys         []Key
	// Only, when not empty, is the one file name (base name) the section may appear in.
	Only string
}

// Schema is the sections a file kind may hold.
type Schema []SectionSchema

func (s Schema) section(name string) (SectionSchema, bool) {
	kind := name
	named := false
	if k, _, ok := strings.Cut(name, " "); ok {
		kind, named = k, true
	} else if k, _, ok := strings.Cut(name, "\t"); ok {
		kind, named = k, true
	}
	for _, sec := range s {
		if sec.Name == kind && (named == sec.Named || !named) {
			return sec, true
		}
	}
	return SectionSchema{}, false
}

func (sec SectionSchema) key(name string) (Key, bool) {
	for _, k := range sec.Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// Validate checks f against the schema: every section and key known (a typo gets the
// nearest known name), no key twice in one section, every non-empty value passing its check.
//
// Names in our files are case-insensitive: Validate lowercases the section kind and the keys
// in f (a section's NAME, as in [node "SS1"], keeps its case).
func (s Schema) Validate(f *File) error {
	base := filepath.Base(f.Path)
	for _, sec := range f.Sections {
		kind, rest, _ := strings.Cut(sec.Name, " ")
		sec.Name = strings.ToLower(kind)
		if rest != "" {
			sec.Name += " " + rest
		}
		for i := range sec.Entries {
			sec.Entries[i].Key = strings.ToLower(sec.Entries[i].Key)
		}
	}
	for _, sec := range f.Sections {
		if sec.Name == "" {
			e := sec.Entries[0]
			return errorf(f.Path, e.Line, "key %q outside a section", e.Key)
		}
		ss, ok := s.section(sec.Name)
		if !ok {
			var names []string
			for _, k := range s {
				names = append(names, k.Name)
			}
			kind, _, _ := strings.Cut(sec.Name, " ")
			msg := fmt.Sprintf("unknown section [%s]", sec.Name)
			if m := nearest(kind, names); m != "" {
				msg += fmt.Sprintf("; did you mean [%s]?", m)
			} else {
				msg += fmt.Sprintf(" (known: %s)", strings.Join(names, ", "))
			}
			return errorf(f.Path, sec.Line, "%s", msg)
		}
		if ss.Named && !ss.NameOptional && !strings.ContainsAny(sec.Name, " \t") {
			return errorf(f.Path, sec.Line, "[%s] needs a name: [%s \"NAME\"]", sec.Name, sec.Name)
		}
		if ss.Only != "" && ss.Only != base {
			return errorf(f.Path, sec.Line, "[%s] belongs in %s, not %s", sec.Name, ss.Only, base)
		}
		seen := map[string]int{}
		for _, e := range sec.Entries {
			k, ok := ss.key(e.Key)
			if !ok {
				var names []string
				for _, k := range ss.Keys {
					names = append(names, k.Name)
				}
				msg := fmt.Sprintf("unknown key %q in [%s]", e.Key, sec.Name)
				if m := nearest(e.Key, names); m != "" {
					msg += fmt.Sprintf("; did you mean %q?", m)
				} else {
					msg += fmt.Sprintf(" (known: %s)", strings.Join(names, ", "))
				}
				return errorf(f.Path, e.Line, "%s", msg)
			}
			if l, dup := seen[e.Key]; dup {
				return errorf(f.Path, e.Line, "[%s] %s is set twice (also on line %d)", sec.Name, e.Key, l)
			}
			seen[e.Key] = e.Line
			if e.Value == "" || k.Check == nil {
				continue
			}
			if err := k.Check(e.Value); err != nil {
				return errorf(f.Path, e.Line, "[%s] %s = %q: %v", sec.Name, e.Key, e.Value, err)
			}
		}
	}
	return nil
}

// nearest is the known name closest to s (case-insensitive edit distance at most 2, or
// one is a prefix of the other), or "".
func nearest(s string, known []string) string {
	best, bestD := "", 3
	ls := strings.ToLower(s)
	for _, k := range known {
		lk := strings.ToLower(k)
		d := distance(ls, lk)
		if d > 0 && (strings.HasPrefix(lk, ls) || strings.HasPrefix(ls, lk)) && len(ls) >= 3 {
			d = min(d, 2)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Damerau-Levenshtein (optimal string alignment) distance.
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// The checks of our files' values.

// Text is any value.
func Text() Check { return nil }

// ParseDuration reads a Go duration ("5s", "250ms", "1m30s"); a bare number is seconds.
func ParseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}

// Duration is a duration from lo to hi.
func Duration(lo, hi time.Duration) Check {
	return func(v string) error {
		d, err := ParseDuration(v)
		if err != nil || d < lo || d > hi {
			return fmt.Errorf("want a duration from %s to %s (such as 5s or 250ms)", fmtDuration(lo), fmtDuration(hi))
		}
		return nil
	}
}

// fmtDuration prints 1h rather than 1h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Int is a whole number from lo to hi.
func Int(lo, hi int) Check {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d", lo, hi)
		}
		return nil
	}
}

// Number is a decimal number from lo to hi; a trailing "%" is allowed when percent.
func Number(lo, hi float64, percent bool) Check {
	return func(v string) error {
		if percent {
			v = strings.TrimSuffix(v, "%")
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a number from %g to %g", lo, hi)
		}
		return nil
	}
}

// Port is a TCP port, 1-65535.
func Port() Check {
	return func(v string) error {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("want a port number 1-65535")
		}
		return nil
	}
}

// Bool is true/false (also yes/no, on/off, 1/0), any case.
func Bool() Check {
	return func(v string) error {
		_, err := ParseBool(v)
		return err
	}
}

// ParseBool reads true/false, yes/no, on/off, 1/0 in any case.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("want true or false")
}

// OneOf is one of words, any case.
func OneOf(words ...string) Check {
	return func(v string) error {
		if slices.Contains(words, strings.ToLower(v)) {
			return nil
		}
		msg := "want " + strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
		if len(words) == 1 {
			msg = "want " + words[0]
		}
		if m := nearest(v, words); m != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", m)
		}
		return fmt.Errorf("%s", msg)
	}
}

// AbsPath is an absolute file path.
func AbsPath() Check {
	return func(v string) error {
		if !filepath.IsAbs(v) {
			return fmt.Errorf("want an absolute path")
		}
		return nil
	}
}

// PathOrOff is an absolute path or off.
func PathOrOff() Check {
	return func(v string) error {
		if isOff(v) || filepath.IsAbs(v) {
			return nil
		}
		return fmt.Errorf("want an absolute path or off")
	}
}

// ListenOrOff is ip:port (ip may be empty) or off.
func ListenOrOff() Check {
	return func(v string) error {
		if isOff(v) {
			return nil
		}
		host, port, err := net.SplitHostPort(v)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 1 || n > 65535 || (host != "" && net.ParseIP(host) == nil) {
			return fmt.Errorf("want ip:port (e.g. 0.0.0.0:5589) or off")
		}
		return nil
	}
}

// Prefixes is a comma-separated list of IP addresses or prefixes.
func Prefixes() Check {
	return func(v string) error {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if _, err := netip.ParseAddr(item); err == nil {
				continue
			}
			if _, err := netip.ParsePrefix(item); err != nil {
				return fmt.Errorf("%q: want an IP address or a prefix such as 10.0.1.0/24", item)
			}
		}
		return nil
	}
}

// isOff reports the words that turn a setting off.
func isOff(v string) bool {
	switch strings.ToLower(v) {
	case "off", "false", "no":
		return true
	}
	return false
}
