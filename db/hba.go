package db

import (
	"fmt"
	"os"
	"strings"

	"github.com/xroad-lb/lbkit/internal/atomicfile"
)

// hbaRule returns the guide's pg_hba.conf rule: TLS replication connections of members of
// role, from address, authenticated by client certificate (the CN is the user name).
func hbaRule(role, address string) []string {
	return []string{"hostssl", "replication", "+" + role, address, "cert"}
}

// ensureHBA puts rule into the pg_hba.conf text unless an identical active rule exists.
// The rule goes before the first active rule for the replication database, because the
// first matching rule decides (initdb's "host replication all 127.0.0.1/32 scram-sha-256"
// would otherwise ask a secondary on loopback for a password). It reports whether it
// changed anything.
func ensureHBA(text string, rule []string, comment string) (string, bool) {
	lines := strings.SplitAfter(text, "\n")
	insertAt := -1
	for i, l := range lines {
		f := hbaFields(l)
		if len(f) == 0 {
			continue
		}
		if equalFields(f, rule) {
			return text, false
		}
		if insertAt < 0 && len(f) > 1 && (f[0] == "local" || strings.HasPrefix(f[0], "host")) &&
			hasWord(f[1], "replication") {
			insertAt = i
		}
	}
	add := "# " + comment + "\n" + strings.Join(rule, "\t") + "\n"
	if insertAt < 0 {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		return text + add, true
	}
	return strings.Join(lines[:insertAt], "") + add + strings.Join(lines[insertAt:], ""), true
}

// hbaFields splits an active pg_hba.conf line into fields (nil for comments and blanks).
func hbaFields(line string) []string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	return strings.Fields(line)
}

func equalFields(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// updateHBAFile applies ensureHBA to the file at path, keeping its mode and owner.
func updateHBAFile(path string, rule []string, comment string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read pg_hba.conf: %w", err)
	}
	text, changed := ensureHBA(string(b), rule, comment)
	if !changed {
		return false, nil
	}
	if err := replaceFile(path, []byte(text)); err != nil {
		return false, err
	}
	return true, nil
}

// replaceFile replaces the existing file at path with data, keeping its mode and owner.
func replaceFile(path string, data []byte) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600, atomicfile.KeepMode(), atomicfile.KeepOwner())
}

func hasWord(list, w string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == w {
			return true
		}
	}
	return false
}

// HasReplicationRule reports whether the pg_hba.conf text has an active hostssl rule for
// the replication pseudo-database that lets members of role (+role, or all users) in with
// certificate or SCRAM authentication, as the guide's chapter 4.3 wants. It returns the
// matching line.
func HasReplicationRule(text, role string) (string, bool) {
	for _, l := range strings.Split(text, "\n") {
		f := hbaFields(l)
		if len(f) < 5 || f[0] != "hostssl" || !hasWord(f[1], "replication") {
			continue
		}
		if !hasWord(f[2], "+"+role) && !hasWord(f[2], "all") {
			continue
		}
		method := f[4]
		if strings.ContainsAny(method, ".:") && len(f) > 5 { // address followed by a mask
			method = f[5]
		}
		if method == "cert" || method == "scram-sha-256" {
			return strings.Join(f, " "), true
		}
	}
	return "", false
}
