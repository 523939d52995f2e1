package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/xroad-lb/lbkit/sync/confsync"
)

// TestLoggedDurationsCarryTheirUnit: a duration in a log line says its unit ("244.98ms"),
// never a bare number such as zerolog's Dur gives ("duration":244.98) (issue 12 bug 8).
func TestLoggedDurationsCarryTheirUnit(t *testing.T) {
	var buf bytes.Buffer
	report := syncReporter(zerolog.New(&buf).Level(zerolog.DebugLevel), confsync.Config{Primary: "127.0.0.1"})
	report(confsync.Event{Kind: confsync.EventPass, Result: confsync.Result{Changes: 1, Duration: 244980 * time.Microsecond}})
	report(confsync.Event{Kind: confsync.EventIdle, Result: confsync.Result{Duration: 1500 * time.Millisecond}})
	var got []any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, m["duration"])
	}
	if len(got) != 2 || got[0] != "244.98ms" || got[1] != "1.5s" {
		t.Errorf("durations logged %v; want [244.98ms 1.5s]\n%s", got, buf.String())
	}
}

// zerologDur finds zerolog's Dur and its unit settings in a line of Go source.
var zerologDur = regexp.MustCompile(`\bDur\(|DurationField(Unit|Integer)`)

// TestNoUnitlessDurationsInLogs keeps it so across the module: no log line is built with
// zerolog's Dur, which writes a bare number of milliseconds.
func TestNoUnitlessDurationsInLogs(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if zerologDur.MatchString(line) {
				t.Errorf("%s:%d: %s: log a duration with its unit (Stringer, e.g. \"244.98ms\")", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
