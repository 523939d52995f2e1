package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestExitStatusAfterCtrlC: make reported "Error 1" after Ctrl-C, because the demo's
// children (lbagent, PostgreSQL) die of the same Ctrl-C and the demo took that for a
// failure (issue 12, bug 8). Interrupted, the demo exits 0; a real failure still exits 1.
func TestExitStatusAfterCtrlC(t *testing.T) {
	interrupted, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		err  error
		code int
		out  string
	}{
		{"done", context.Background(), nil, 0, ""},
		{"failed", context.Background(), errors.New("lbagent exited: exit status 1"), 1, "demo: lbagent exited: exit status 1\n"},
		{"Ctrl-C, children died of it", interrupted, errors.New("lbagent exited: signal: interrupt"), 0, "demo: interrupted, stopped\n"},
		{"Ctrl-C during a step", interrupted, fmt.Errorf("lbadapter drain: %w", context.Canceled), 0, "demo: interrupted, stopped\n"},
	} {
		var b bytes.Buffer
		if got := exitStatus(tt.ctx, tt.err, &b); got != tt.code || b.String() != tt.out {
			t.Errorf("%s: exit %d, %q; want %d, %q", tt.name, got, b.String(), tt.code, tt.out)
		}
	}
}

// TestWaitNote: with DEMO_SECONDS the demo ends by itself and must not say "Press Ctrl-C".
func TestWaitNote(t *testing.T) {
	for in, want := range map[string]string{
		"":   "Press Ctrl-C to stop.",
		"3":  "Stopping in 3 s (DEMO_SECONDS); Ctrl-C stops sooner.",
		"x":  "Press Ctrl-C to stop.",
		"-1": "Press Ctrl-C to stop.",
	} {
		if got := waitNote(in); got != want {
			t.Errorf("waitNote(%q) = %q; want %q", in, got, want)
		}
	}
}
