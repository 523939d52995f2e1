// Package nginx drives open-source nginx upstreams from outside: the servers file that lbkit
// keeps (server lines with down and weight), nginx -t, the graceful reload and the counting of
// the workers' connections.
package nginx

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// markPrefix starts the comment that says who set a server's down or weight.
const markPrefix = "# lbkit:"

// Server is one `server ADDR:PORT [weight=N] [down] ...;` line of a servers file.
type Server struct {
	Addr   string   // ADDR:PORT as written
	Weight int      // the weight= parameter; 0 = not written (nginx's default 1)
	Params []string // every other parameter, kept as written (max_fails=3, backup, ...)

	// Operator is a down set by the operator (lbadapter drain, or `down` written by hand).
	Operator bool
	// Agent is a down set by lbadapter watch from the node's agent.
	Agent bool
	// BaseWeight is the weight before lbadapter watch scaled it; 0 = not scaled.
	BaseWeight int
	// Reason is the agent's words behind Agent or a scaled weight, for people.
	Reason string
	// Comment is the line's own comment (without '#'), kept.
	Comment string
}

// Down reports whether the line takes the server out of rotation.
func (s *Server) Down() bool { return s.Operator || s.Agent }

// Format is the line as lbkit writes it.
func (s *Server) Format() string {
	var b strings.Builder
	b.WriteString("server " + s.Addr)
	if s.Weight > 0 {
		b.WriteString(" weight=" + strconv.Itoa(s.Weight))
	}
	for _, p := range s.Params {
		b.WriteString(" " + p)
	}
	if s.Down() {
		b.WriteString(" down")
	}
	b.WriteString(";")
	if s.Comment != "" {
		b.WriteString(" #" + s.Comment)
	}
	var mark []string
	switch {
	case s.Operator && s.Agent:
		mark = append(mark, "down=operator,agent")
	case s.Operator:
		mark = append(mark, "down=operator")
	case s.Agent:
		mark = append(mark, "down=agent")
	}
	if s.BaseWeight > 0 {
		mark = append(mark, "base-weight="+strconv.Itoa(s.BaseWeight))
	}
	if len(mark) > 0 {
		b.WriteString(" " + markPrefix + " " + strings.Join(mark, " "))
		if r := cleanReason(s.Reason); r != "" && (s.Agent || s.BaseWeight > 0) {
			b.WriteString(" reason: " + r)
		}
	}
	return b.String()
}

// cleanReason keeps a reason on one line and short.
func cleanReason(r string) string {
	r = strings.Join(strings.Fields(strings.ToValidUTF8(r, "?")), " ")
	if len(r) > 120 {
		r = r[:120]
		for len(r) > 0 && r[len(r)-1]&0xc0 == 0x80 {
			r = r[:len(r)-1]
		}
	}
	return r
}

// File is a servers file: server lines lbkit can change, everything else kept as it is.
type File struct {
	lines []fileLine
}

type fileLine struct {
	raw  string
	srv  *Server // nil for lines that are not a single server line
	orig string  // srv.Format() as parsed: unchanged servers keep their raw line
}

// Parse reads a servers file. Lines that are not one `server ...;` (comments, blank lines)
// are kept as they are; a server line lbkit cannot read is an error naming the line.
func Parse(data []byte) (*File, error) {
	f := &File{}
	text := string(data)
	if text == "" {
		return f, nil
	}
	text = strings.TrimSuffix(text, "\n")
	for i, raw := range strings.Split(text, "\n") {
		s, err := parseLine(raw)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		l := fileLine{raw: raw, srv: s}
		if s != nil {
			l.orig = s.Format()
		}
		f.lines = append(f.lines, l)
	}
	return f, nil
}

func parseLine(raw string) (*Server, error) {
	code, comment, _ := strings.Cut(raw, "#")
	code = strings.TrimSpace(code)
	if code == "" {
		return nil, nil
	}
	fields := strings.Fields(strings.TrimSuffix(code, ";"))
	if fields[0] != "server" {
		return nil, fmt.Errorf("%q: want only `server ADDR:PORT [weight=N] [down];` lines and comments", strings.TrimSpace(raw))
	}
	if !strings.HasSuffix(code, ";") || strings.Count(code, ";") != 1 || len(fields) < 2 {
		return nil, fmt.Errorf("%q: want one `server ADDR:PORT ...;` per line", strings.TrimSpace(raw))
	}
	s := &Server{Addr: fields[1]}
	down := false
	for _, p := range fields[2:] {
		switch {
		case p == "down":
			down = true
		case strings.HasPrefix(p, "weight="):
			w, err := strconv.Atoi(p[len("weight="):])
			if err != nil || w < 1 {
				return nil, fmt.Errorf("%q: bad %s", strings.TrimSpace(raw), p)
			}
			s.Weight = w
		default:
			s.Params = append(s.Params, p)
		}
	}
	// The comment: the line's own text, then lbkit's mark.
	own, mark, marked := strings.Cut("#"+comment, markPrefix)
	if comment != "" || strings.Contains(raw, "#") {
		s.Comment = strings.TrimRight(strings.TrimPrefix(own, "#"), " ")
	}
	if marked {
		words, reason, _ := strings.Cut(mark, "reason:")
		s.Reason = strings.TrimSpace(reason)
		for _, w := range strings.Fields(words) {
			k, v, _ := strings.Cut(w, "=")
			switch k {
			case "down":
				for _, who := range strings.Split(v, ",") {
					s.Operator = s.Operator || who == "operator"
					s.Agent = s.Agent || who == "agent"
				}
			case "base-weight":
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					s.BaseWeight = n
				}
			}
		}
	}
	// `down` without lbkit's mark was written by hand: the operator's.
	if down && !s.Down() {
		s.Operator = true
	}
	// A mark whose down was removed by hand: the line says up.
	if !down {
		s.Operator, s.Agent = false, false
	}
	return s, nil
}

// Bytes is the file's text: unchanged lines exactly as read.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.lines {
		if l.srv != nil && l.srv.Format() != l.orig {
			b.WriteString(l.srv.Format())
		} else {
			b.WriteString(l.raw)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Servers returns the file's server lines, in order; changes to them show in Bytes.
func (f *File) Servers() []*Server {
	var out []*Server
	for _, l := range f.lines {
		if l.srv != nil {
			out = append(out, l.srv)
		}
	}
	return out
}

// Find returns the server line of host:port (host compared without case), or nil.
func (f *File) Find(host string, port int) *Server {
	for _, l := range f.lines {
		if l.srv == nil {
			continue
		}
		h, p, err := net.SplitHostPort(l.srv.Addr)
		if err == nil && strings.EqualFold(h, host) && p == strconv.Itoa(port) {
			return l.srv
		}
	}
	return nil
}

// Add appends a server line for host:port and returns it.
func (f *File) Add(host string, port int) *Server {
	s := &Server{Addr: net.JoinHostPort(host, strconv.Itoa(port))}
	f.lines = append(f.lines, fileLine{srv: s, orig: "\x00"})
	return s
}

// Scale sets the server's weight to pct percent of its base weight (the weight before the
// first scaling), in hundredths: nginx weights are whole numbers, so weight 1 at 50% is
// written weight=50, and every server of the upstream must be scaled (100 for full weight)
// for the ratios to hold. A negative pct restores the base weight.
func (s *Server) Scale(pct int) {
	if pct < 0 {
		if s.BaseWeight > 0 {
			s.Weight = s.BaseWeight
			if s.Weight == 1 {
				s.Weight = 0
			}
			s.BaseWeight = 0
		}
		return
	}
	if s.BaseWeight == 0 {
		s.BaseWeight = max(s.Weight, 1)
	}
	s.Weight = max(1, s.BaseWeight*pct)
}
