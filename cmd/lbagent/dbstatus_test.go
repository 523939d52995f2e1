package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/db"
)

// TestDBStatusHumanUnits: db status printed raw bytes and "0.0s" while a standby was
// behind (issue 12, bug 8). Sizes are in lag-limit's units; a lag time that PostgreSQL does
// not know is said so, not printed as zero.
func TestDBStatusHumanUnits(t *testing.T) {
	last := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		s    db.Standby
		want string
	}{
		{"caught up", db.Standby{CaughtUp: true, PauseState: "not paused"}, "none (caught up)"},
		{"behind, time known", db.Standby{LagBytes: 12800, LagSeconds: 242.4, LastReplay: last, PauseState: "paused", Paused: true},
			"12.5kB received, not replayed; last replayed transaction 4m2s ago"},
		{"behind, no transaction replayed yet", db.Standby{LagBytes: 3 << 20, PauseState: "paused", Paused: true},
			"3.0MB received, not replayed; time unknown (no transaction replayed since the standby started)"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		printStatus(&b, &db.Report{Target: "127.0.0.1:5433", Role: "standby", Standby: &tt.s})
		_, lag, _ := strings.Cut(b.String(), "  lag:")
		if got := strings.TrimSpace(lag); got != tt.want {
			t.Errorf("%s:\n%s\nwant lag: %q", tt.name, b.String(), tt.want)
		}
	}

	var b bytes.Buffer
	printStatus(&b, &db.Report{Target: "127.0.0.1:5433", Role: "primary", Replicas: []db.Replica{
		{Name: "replica1", State: "streaming", LagBytes: 2 << 20, LagSeconds: 0},
		{Name: "replica2", State: "streaming", LagBytes: 0, LagSeconds: 0},
		{Name: "replica3", State: "catchup", LagBytes: 1536, LagSeconds: 1.26},
	}})
	for _, want := range []string{"2.0MB", "replica3", "1.5kB  1.3s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("primary table:\n%s\nwant %q", b.String(), want)
		}
	}
	if strings.Contains(b.String(), "0.0s") || strings.Contains(b.String(), "2097152") {
		t.Errorf("primary table:\n%s\nwant no raw byte count and no 0.0s for an unknown lag time", b.String())
	}
}
