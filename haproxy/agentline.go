package haproxy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// AgentReply is one agent-check answer, the line an agent sends HAProxy's agent-check.
// Empty fields are not sent. Per category HAProxy keeps the last word, so a reply holds at
// most one word of each.
type AgentReply struct {
	Health    string // "up", "down", "stopped", "fail" or ""
	Admin     string // "ready", "drain", "maint" or ""
	Weight    int    // percent of the configured weight, sent as "N%" when WeightSet
	WeightSet bool
	Maxconn   int    // "maxconn:N"; 0 = not sent
	Text      string // free text after '#', shown on HAProxy's stats page
}

// ErrIncompleteLine is returned for a reply without its line end: HAProxy ignores it.
var ErrIncompleteLine = errors.New("agent reply: incomplete line (no \\n or \\r)")

// maxText bounds the free text sent (HAProxy shows a short description).
const maxText = 200

// Append appends the reply as one '\n'-terminated line. Text is made safe: control characters
// become spaces and it is cut to a couple of hundred bytes.
func (r AgentReply) Append(dst []byte) []byte {
	n := len(dst)
	word := func(w string) {
		if len(dst) > n {
			dst = append(dst, ' ')
		}
		dst = append(dst, w...)
	}
	if r.Health != "" {
		word(r.Health)
	}
	if r.Admin != "" {
		word(r.Admin)
	}
	if r.WeightSet {
		word(strconv.Itoa(r.Weight) + "%")
	}
	if r.Maxconn > 0 {
		word("maxconn:" + strconv.Itoa(r.Maxconn))
	}
	if t := cleanText(r.Text); t != "" {
		word("#" + t)
	}
	return append(dst, '\n')
}

// String is the line without its '\n'.
func (r AgentReply) String() string {
	b := r.Append(nil)
	return string(b[:len(b)-1])
}

func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > maxText {
		cut := maxText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return strings.TrimSpace(s)
}

// ParseAgentLine reads an agent reply the way HAProxy does: only the first line counts (ended
// by '\n' or '\r'), words are separated by spaces, tabs or commas, case does not matter, per
// category the last word wins, and a word starting with '#' makes the rest of the line the
// free text. Unknown words are an error.
func ParseAgentLine(b []byte) (AgentReply, error) {
	end := strings.IndexAny(string(b), "\r\n")
	if end < 0 {
		return AgentReply{}, ErrIncompleteLine
	}
	line := string(b[:end])
	r := AgentReply{}
	for line != "" {
		line = strings.TrimLeft(line, " \t,")
		if line == "" {
			break
		}
		if line[0] == '#' {
			r.Text = strings.TrimSpace(line[1:])
			break
		}
		i := strings.IndexAny(line, " \t,")
		if i < 0 {
			i = len(line)
		}
		w := strings.ToLower(line[:i])
		line = line[i:]
		switch {
		case w == "up" || w == "down" || w == "stopped" || w == "fail":
			r.Health = w
		case w == "ready" || w == "drain" || w == "maint":
			r.Admin = w
		case strings.HasSuffix(w, "%"):
			n, err := strconv.Atoi(w[:len(w)-1])
			if err != nil || n < 0 {
				return r, fmt.Errorf("agent reply: bad weight %q", w)
			}
			r.Weight, r.WeightSet = n, true
		case strings.HasPrefix(w, "maxconn:"):
			n, err := strconv.Atoi(w[len("maxconn:"):])
			if err != nil || n < 0 {
				return r, fmt.Errorf("agent reply: bad maxconn %q", w)
			}
			r.Maxconn = n
		default:
			return r, fmt.Errorf("agent reply: unknown word %q", w)
		}
	}
	return r, nil
}
