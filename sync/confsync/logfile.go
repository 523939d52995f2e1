package confsync

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// passLog appends an operator-readable record of every pass to a file, in the shape of
// rsync's --log-file ("2006/01/02 15:04:05 [pid] >f..t...... signer/keyconf.xml").
// Passes without changes are summarised in one line per idleEvery, so a one-second
// interval does not flood the file. The file is opened for each write (logrotate needs no
// copytruncate).
type passLog struct {
	path      string
	pid       int
	idleEvery time.Duration

	idlePasses int
	idleSince  time.Time
}

func newPassLog(path string) *passLog {
	return &passLog{path: path, pid: os.Getpid(), idleEvery: time.Minute}
}

func (l *passLog) prefix(t time.Time) string {
	return t.Format("2006/01/02 15:04:05") + " [" + strconv.Itoa(l.pid) + "] "
}

// pass records a pass; now is when it ended.
func (l *passLog) pass(now time.Time, r Result, err error) error {
	if l == nil || l.path == "" {
		return nil
	}
	var b strings.Builder
	idle := err == nil && len(r.Items) == 0 && len(r.Refused) == 0 && len(r.Skipped) == 0 && !r.Recovered
	if idle {
		if l.idlePasses == 0 {
			l.idleSince = r.Start
		}
		l.idlePasses++
		if now.Sub(l.idleSince) < l.idleEvery {
			return nil
		}
		l.flushIdle(&b, now, r)
		return l.write(b.String())
	}
	l.flushIdle(&b, now, r)
	p := l.prefix(r.Start)
	if r.Recovered {
		b.WriteString(p + "completed a commit interrupted by a crash (intent journal replayed)\n")
	}
	b.WriteString(p + "receiving file list\n")
	for _, f := range r.Refused {
		b.WriteString(p + "refused " + escapeName(f.Path) + ": " + escapeName(f.Reason) + "\n")
	}
	for _, f := range r.Skipped {
		b.WriteString(p + "skipped " + escapeName(f.Path) + ": " + escapeName(f.Reason) + "\n")
	}
	for _, it := range r.Items {
		b.WriteString(p + it.String() + "\n")
	}
	p = l.prefix(now)
	if err != nil {
		fmt.Fprintf(&b, "%ssync error: %s; nothing was changed\n", p, escapeName(err.Error()))
	} else {
		fmt.Fprintf(&b, "%ssent %s bytes  received %s bytes  total size %s\n", p,
			thousands(r.NetSent), thousands(r.NetRead), thousands(r.Total))
		fmt.Fprintf(&b, "%s%d changes in %.3fs (%d files on the primary)\n", p, r.Changes, r.Duration.Seconds(), r.Files)
		if len(r.Skipped) > 0 {
			fmt.Fprintf(&b, "%ssync error: some files were not transferred (%d skipped, see above) (code 23)\n", p, len(r.Skipped))
		}
	}
	return l.write(b.String())
}

func (l *passLog) flushIdle(b *strings.Builder, now time.Time, r Result) {
	if l.idlePasses == 0 {
		return
	}
	fmt.Fprintf(b, "%s%d passes without changes since %s (%d files, total size %s)\n", l.prefix(now),
		l.idlePasses, l.idleSince.Format("15:04:05"), r.Files, thousands(r.Total))
	l.idlePasses = 0
}

// note records a state change such as pausing.
func (l *passLog) note(now time.Time, msg string) error {
	if l == nil || l.path == "" {
		return nil
	}
	return l.write(l.prefix(now) + msg + "\n")
}

func (l *passLog) write(s string) error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("sync log: %w", err)
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync log: %w", err)
	}
	return nil
}

// escapeName writes a name for a one-line log entry as rsync does: a byte that is not
// printable ASCII (a newline, a control character, invalid or non-ASCII UTF-8) and the
// backslash that could start such an escape become \#ooo (octal), so a name from the
// primary can never start a line of its own.
func escapeName(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			fmt.Fprintf(&b, "\\#%03o", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// thousands formats n with commas, as rsync prints byte counts.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
