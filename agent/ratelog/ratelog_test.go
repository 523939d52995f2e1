package ratelog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
)

func TestOneLinePerInterval(t *testing.T) {
	var buf bytes.Buffer
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	l := New(zerolog.New(&buf), 10*time.Second, clock)
	for i := 0; i < 5000; i++ {
		l.Printf("error when serving connection %q: %v", "127.0.0.5:1234", "cannot parse \x00garbage\n{\"fake\":1}")
		if i == 2999 {
			clock.Advance(10 * time.Second)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || l.Total() != 5000 {
		t.Fatalf("got %d lines, total %d; want 2 lines (one per interval), 5000 counted:\n%s", len(lines), l.Total(), buf.String())
	}
	var second struct {
		Error    string `json:"error"`
		HeldBack uint64 `json:"held_back"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatalf("line is not one JSON object: %v: %s", err, lines[1])
	}
	if second.HeldBack != 2999 || !strings.Contains(second.Error, "cannot parse") {
		t.Fatalf("second line %+v; want 2999 held back and the error", second)
	}
}

func TestLongLinesAreCut(t *testing.T) {
	var buf bytes.Buffer
	l := New(zerolog.New(&buf), 0, nil)
	l.Printf("%s", strings.Repeat("x", 10000))
	if buf.Len() > 2*maxLen {
		t.Fatalf("logged %d bytes for one error; want about %d", buf.Len(), maxLen)
	}
}
