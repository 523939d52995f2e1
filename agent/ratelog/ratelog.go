// Package ratelog turns an HTTP server's error lines (one per malformed request) into at most
// one zerolog event per interval, with a count of the lines it held back, so a flood of bad
// requests can neither fill the disk nor push the verdict lines out of the journal.
package ratelog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
)

// DefaultInterval is the shortest time between two logged lines.
const DefaultInterval = 10 * time.Second

// maxLen bounds the text of one logged error.
const maxLen = 300

// Logger is a printf-style logger (fasthttp.Logger) that logs through zerolog, rate-limited.
type Logger struct {
	log      zerolog.Logger
	interval time.Duration
	clock    clockwork.Clock

	mu         sync.Mutex
	last       time.Time
	suppressed uint64

	total atomic.Uint64
}

// New returns a logger that writes at most one line per interval (0 = DefaultInterval) to
// log; clock is the clock (nil = the real clock).
func New(log zerolog.Logger, interval time.Duration, clock clockwork.Clock) *Logger {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Logger{log: log, interval: interval, clock: clock}
}

// Printf counts the line and logs it unless a line was logged less than an interval ago.
func (l *Logger) Printf(format string, args ...any) {
	l.total.Add(1)
	now := l.clock.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	held := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxLen {
		msg = msg[:maxLen] + "…"
	}
	l.log.Warn().Str("error", msg).Uint64("held_back", held).
		Str("every", l.interval.String()).Msg("bad requests (one line per interval; all counted in /metrics)")
}

// Total is the number of lines seen, logged or not.
func (l *Logger) Total() uint64 { return l.total.Load() }
