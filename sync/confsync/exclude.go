package confsync

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultExcludes are the guide's rsync excludes for secondaries: files that are node-local
// (node.ini, db.properties, the serverconf database's own files) or fetched by each node itself
// (globalconf), and temporary files.
var DefaultExcludes = []string{"db.properties", "/postgresql", "/globalconf", "/conf.d/node.ini", "/gpghome", "*.tmp"}

// Excludes matches relative paths against rsync-style exclude patterns:
//
//   - a pattern starting with "/" is anchored at the root of the transfer;
//   - otherwise it matches the end of the path at a component boundary ("*.tmp" matches
//     "a/b.tmp", "conf.d/x" matches "y/conf.d/x");
//   - a trailing "/" matches directories only;
//   - "*" matches within one component, "**" across components, "?" one character, and
//     "[...]" a character class.
//
// An excluded directory excludes everything below it. Excluded paths are neither copied nor
// deleted on the receiving side (like rsync without --delete-excluded).
type Excludes struct {
	rules []excludeRule
}

type excludeRule struct {
	pattern string
	dirOnly bool
	re      *regexp.Regexp
	// Fast paths for the common patterns, checked without the regexp (a full listing
	// matches every entry against every rule): lit is a pattern without wildcards
	// ("db.properties", "/globalconf"), suffix one of the form "*.tmp".
	kind byte // 0 = regexp, 'a' = anchored literal, 'l' = literal, 's' = "*"+suffix
	lit  string
}

// NewExcludes compiles patterns; an empty or malformed pattern is an error.
func NewExcludes(patterns []string) (*Excludes, error) {
	e := &Excludes{}
	for _, p := range patterns {
		r, err := compileExclude(p)
		if err != nil {
			return nil, err
		}
		e.rules = append(e.rules, r)
	}
	return e, nil
}

func compileExclude(p string) (excludeRule, error) {
	r := excludeRule{pattern: p}
	body := p
	if strings.HasSuffix(body, "/") {
		r.dirOnly = true
		body = strings.TrimRight(body, "/")
	}
	anchored := strings.HasPrefix(body, "/")
	body = strings.TrimLeft(body, "/")
	if body == "" {
		return r, fmt.Errorf("pattern %q: %w", p, ErrBadPattern)
	}
	switch {
	case !strings.ContainsAny(body, `*?[\`):
		r.lit, r.kind = body, 'l'
		if anchored {
			r.kind = 'a'
		}
	case strings.HasPrefix(body, "*") && !strings.ContainsAny(body[1:], `*?[\/`):
		r.lit, r.kind = body[1:], 's'
	}
	var b strings.Builder
	if anchored {
		b.WriteString("^")
	} else {
		b.WriteString("(?:^|/)")
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case '*':
			if i+1 < len(body) && body[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(body[i+1:], ']')
			if j < 0 {
				return r, fmt.Errorf("pattern %q: unclosed '[': %w", p, ErrBadPattern)
			}
			class := body[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		case '\\':
			if i+1 < len(body) {
				i++
				b.WriteString(regexp.QuoteMeta(string(body[i])))
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return r, fmt.Errorf("pattern %q: %w", p, ErrBadPattern)
	}
	r.re = re
	return r, nil
}

// Match reports whether the relative, slash-separated path rel (no leading "/") is excluded
// itself; isDir says whether it is a directory. Callers walking a tree do not descend into
// an excluded directory, so the rules apply to its contents too.
func (e *Excludes) Match(rel string, isDir bool) bool {
	if e == nil {
		return false
	}
	for _, r := range e.rules {
		if r.dirOnly && !isDir {
			continue
		}
		var m bool
		switch r.kind {
		case 'a':
			m = rel == r.lit
		case 'l':
			m = rel == r.lit || strings.HasSuffix(rel, r.lit) && rel[len(rel)-len(r.lit)-1] == '/'
		case 's':
			m = strings.HasSuffix(rel, r.lit)
		default:
			m = r.re.MatchString(rel)
		}
		if m {
			return true
		}
	}
	return false
}

// Patterns returns the patterns as given.
func (e *Excludes) Patterns() []string {
	out := make([]string, 0, len(e.rules))
	for _, r := range e.rules {
		out = append(out, r.pattern)
	}
	return out
}
