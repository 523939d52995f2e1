package settings

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rules selects how a file is read.
type Rules int

const (
	// XRoadRules read a file as X-Road's SystemPropertiesLoader does (Apache Commons
	// Configuration's INI format).
	XRoadRules Rules = iota
	// OurRules read lbkit's own files: X-Road's syntax, stricter (see the package comment).
	OurRules
)

// Entry is one key = value line (with its continuation lines).
type Entry struct {
	Key, Value string
	Line       int // 1-based line of the key
}

// Section is one [name] header and the entries below it. The entries before the first
// header are in a section named "" at line 0.
type Section struct {
	Name    string
	Line    int
	Entries []Entry
}

// File is a parsed INI file; sections in file order (a repeated header is a new Section).
type File struct {
	Path     string
	Sections []*Section
}

// Error is a problem in a settings file: the file, the line (0 when unknown) and what is wrong.
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

func errorf(path string, line int, format string, args ...any) error {
	return &Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// ReadFile reads and parses path. A missing file's error wraps fs.ErrNotExist.
func ReadFile(path string, r Rules) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b, r)
}

// Parse parses data (named path in errors) by rules r. Syntax errors (a line that is neither a
// comment, a [section] nor key = value; an unclosed header; a binary file) name the line.
func Parse(path string, data []byte, r Rules) (*File, error) {
	if err := checkText(path, data); err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lines := strings.Split(string(data), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	f := &File{Path: path}
	cur := &Section{}
	f.Sections = append(f.Sections, cur)
	for i := 0; i < len(lines); i++ {
		n := i + 1
		t := strings.TrimSpace(lines[i])
		if t == "" || isComment(t[0]) {
			continue
		}
		if t[0] == '[' {
			name, err := sectionHeader(t)
			if err != nil {
				return nil, errorf(path, n, "%s", err)
			}
			cur = &Section{Name: name, Line: n}
			f.Sections = append(f.Sections, cur)
			continue
		}
		sep := separator(t, r)
		if sep < 0 {
			return nil, errorf(path, n, "%q is not key = value", t)
		}
		key := strings.TrimSpace(t[:sep])
		if key == "" {
			return nil, errorf(path, n, "%q has no key before the %q", t, string(t[sep]))
		}
		value, used := parseValue(t[sep+1:], lines[i+1:], r)
		cur.Entries = append(cur.Entries, Entry{Key: key, Value: value, Line: n})
		i += used
	}
	if len(f.Sections[0].Entries) == 0 {
		f.Sections = f.Sections[1:]
	}
	return f, nil
}

// checkText refuses binary files: a NUL byte or bytes that are not UTF-8.
func checkText(path string, data []byte) error {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return errorf(path, bytes.Count(data[:i], []byte("\n"))+1, "not a text file (NUL byte)")
	}
	if !utf8.Valid(data) {
		for i := 0; i < len(data); {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				return errorf(path, bytes.Count(data[:i], []byte("\n"))+1, "not a text file (not UTF-8)")
			}
			i += size
		}
	}
	return nil
}

func isComment(c byte) bool { return c == ';' || c == '#' }

// sectionHeader reads "[name]", allowing a comment after the "]".
func sectionHeader(t string) (string, error) {
	end := strings.IndexByte(t, ']')
	if end < 0 {
		return "", fmt.Errorf("unclosed section header %q", t)
	}
	if rest := strings.TrimSpace(t[end+1:]); rest != "" && !isComment(rest[0]) {
		return "", fmt.Errorf("%q after the section header", rest)
	}
	name := strings.TrimSpace(t[1:end])
	if name == "" {
		return "", fmt.Errorf("empty section name %q", t)
	}
	return name, nil
}

// separator is the index of the character between key and value, or -1. X-Road (Commons
// Configuration) takes the first '=' or ':' before the first quote, else the first anywhere;
// our files take the first '='.
func separator(t string, r Rules) int {
	if r == OurRules {
		return strings.IndexByte(t, '=')
	}
	if q := strings.IndexAny(t, `"'`); q >= 0 {
		if i := strings.IndexAny(t[:q], "=:"); i >= 0 {
			return i
		}
	}
	return strings.IndexAny(t, "=:")
}

// parseValue is Commons Configuration's INIConfiguration.parseValue: quotes with backslash
// escapes of the quote, a comment character after whitespace ends the value, a trailing
// "\" (alone or after whitespace) continues it on the next line (joined by "\n"). Under
// OurRules a comment character at the start of the value also starts a comment. It returns
// the value and the number of continuation lines used.
func parseValue(val string, next []string, r Rules) (string, int) {
	var out strings.Builder
	value := strings.TrimSpace(val)
	used := 0
	for {
		quoted := strings.HasPrefix(value, `"`) || strings.HasPrefix(value, `'`)
		var quote byte
		i := 0
		if quoted {
			quote, i = value[0], 1
		}
		var res strings.Builder
		escape, stop := false, false
		last := byte(0)
		if r == OurRules {
			last = ' ' // a comment may start the value
		}
		for ; i < len(value) && !stop; i++ {
			c := value[i]
			switch {
			case quoted:
				switch {
				case c == '\\' && !escape:
					escape = true
				case !escape && c == quote:
					stop = true
				default:
					if escape && c != quote {
						res.WriteByte('\\')
					}
					escape = false
					res.WriteByte(c)
				}
			case isComment(c) && isSpace(last):
				stop = true
			default:
				res.WriteByte(c)
			}
			last = c
		}
		v := res.String()
		var cont bool
		if !quoted {
			v = strings.TrimSpace(v)
			if cont = continues(v); cont {
				v = strings.TrimSpace(v[:len(v)-1])
			}
		} else {
			rest := value[i:]
			if i >= len(value) {
				rest = value
			} else if end := strings.IndexAny(rest, ";#"); end >= 0 {
				rest = rest[:end]
			}
			cont = continues(rest)
		}
		out.WriteString(v)
		if !cont || used >= len(next) {
			return out.String(), used
		}
		out.WriteByte('\n')
		value = next[used]
		used++
	}
}

func isSpace(c byte) bool { return unicode.IsSpace(rune(c)) }

// continues is Commons Configuration's lineContinues: "\" alone, or at the end after whitespace.
func continues(s string) bool {
	s = strings.TrimSpace(s)
	return s == `\` || len(s) > 2 && strings.HasSuffix(s, `\`) && isSpace(s[len(s)-2])
}
