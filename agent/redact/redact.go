// Package redact removes secrets (the serverconf database password) from everything that
// leaves the process: log lines, /status and /metrics. A secret is matched as written and in
// the forms it takes on the way out: JSON-escaped, quoted as in a libpq connection string,
// URL-escaped.
package redact

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// passwordValue is a libpq "password=" setting up to the next setting or the end of the
// quoted connection string: a library that masks only up to the first space (pgx's parse
// errors do) would leave the rest of a password with spaces in view.
var passwordValue = regexp.MustCompile(`(password=)(?:[^"\n` + "`" + `]*?)(\\?"|` + "`" + `|\s+[a-z_]+=|$)`)

var passwordKey = []byte("password=")

// Mask replaces a secret.
const Mask = "[redacted]"

// MinLen is the shortest secret that is masked wherever it appears; a shorter one would mask
// ordinary words.
const MinLen = 4

// Redactor masks a growing set of secrets. The zero value masks nothing; it is safe for
// concurrent use.
type Redactor struct {
	mu      sync.Mutex
	secrets map[string]bool
	forms   atomic.Pointer[[][]byte] // every form of every secret, longest first
}

// Add adds a secret (and its escaped forms). Secrets shorter than MinLen are ignored.
func (r *Redactor) Add(secret string) {
	if len(secret) < MinLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secrets[secret] {
		return
	}
	if r.secrets == nil {
		r.secrets = map[string]bool{}
	}
	r.secrets[secret] = true
	seen := map[string]bool{}
	var forms [][]byte
	for s := range r.secrets {
		for _, f := range variants(s) {
			if len(f) >= MinLen && !seen[f] {
				seen[f] = true
				forms = append(forms, []byte(f))
			}
		}
	}
	// Longest first, so an escaped form is masked whole before the raw secret inside it.
	for i := 1; i < len(forms); i++ {
		for j := i; j > 0 && len(forms[j]) > len(forms[j-1]); j-- {
			forms[j], forms[j-1] = forms[j-1], forms[j]
		}
	}
	r.forms.Store(&forms)
}

func variants(s string) []string {
	j, _ := json.Marshal(s)
	js := string(j[1 : len(j)-1])
	conn := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
	cj, _ := json.Marshal(conn)
	return []string{s, js, conn, string(cj[1 : len(cj)-1]), url.QueryEscape(s), url.PathEscape(s)}
}

// Bytes returns b with every secret masked, and every "password=" value; b itself when it
// holds none.
func (r *Redactor) Bytes(b []byte) []byte {
	if bytes.Contains(b, passwordKey) {
		b = passwordValue.ReplaceAll(b, []byte("${1}"+Mask+"${2}"))
	}
	fp := r.forms.Load()
	if fp == nil {
		return b
	}
	for _, f := range *fp {
		if bytes.Contains(b, f) {
			b = bytes.ReplaceAll(b, f, []byte(Mask))
		}
	}
	return b
}

// String returns s with every secret masked, and every "password=" value.
func (r *Redactor) String(s string) string {
	if strings.Contains(s, "password=") {
		s = passwordValue.ReplaceAllString(s, "${1}"+Mask+"${2}")
	}
	fp := r.forms.Load()
	if fp == nil {
		return s
	}
	for _, f := range *fp {
		s = strings.ReplaceAll(s, string(f), Mask)
	}
	return s
}

// Writer returns a writer that masks secrets in each write before passing it on (zerolog
// writes one whole line per call).
func (r *Redactor) Writer(w io.Writer) io.Writer { return writer{r: r, w: w} }

type writer struct {
	r *Redactor
	w io.Writer
}

func (w writer) Write(p []byte) (int, error) {
	q := w.r.Bytes(p)
	if len(q) == len(p) && (len(p) == 0 || &q[0] == &p[0]) {
		return w.w.Write(p)
	}
	if _, err := w.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
