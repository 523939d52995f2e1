package backoff

import (
	"testing"
	"time"
)

func TestPolicyDelay(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		p    Policy
		n    int
		want time.Duration
	}{
		{Policy{5 * ms, time.Second}, -1, 0},
		{Policy{5 * ms, time.Second}, 0, 0},
		{Policy{5 * ms, time.Second}, 1, 5 * ms},
		{Policy{5 * ms, time.Second}, 2, 10 * ms},
		{Policy{5 * ms, time.Second}, 8, 640 * ms},
		{Policy{5 * ms, time.Second}, 9, time.Second},
		{Policy{5 * ms, time.Second}, 1 << 30, time.Second}, // no overflow, no long loop
		{Policy{time.Minute, 30 * time.Second}, 1, time.Minute},
		{Policy{time.Minute, 30 * time.Second}, 5, time.Minute}, // Max below Min counts as Min
		{Policy{time.Duration(1<<62 + 1), time.Duration(1<<63 - 1)}, 3, time.Duration(1<<63 - 1)},
	}
	for _, tt := range tests {
		if got := tt.p.Delay(tt.n); got != tt.want {
			t.Errorf("%+v.Delay(%d) = %v; want %v", tt.p, tt.n, got, tt.want)
		}
	}
}

func TestBackoffFailReset(t *testing.T) {
	b := New(250*time.Millisecond, 2*time.Second)
	var got []time.Duration
	for range 6 {
		got = append(got, b.Fail())
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v; want %v", got, want)
		}
	}
	if b.Failures() != 4 {
		t.Errorf("Failures() = %d after reaching Max at the 4th; want 4", b.Failures())
	}
	b.Reset()
	if b.Failures() != 0 {
		t.Errorf("Failures() = %d after Reset; want 0", b.Failures())
	}
	if d := b.Fail(); d != 250*time.Millisecond {
		t.Errorf("first wait after Reset %v; want 250ms", d)
	}
}
