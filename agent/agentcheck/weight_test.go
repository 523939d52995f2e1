package agentcheck

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestDynamicWeightHysteresis(t *testing.T) {
	d, err := NewDynamicWeight(DynamicConfig{Source: SourceConnections, Low: 100, High: 1000, Min: 10, Step: 10})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sample float64
		want   int
	}{
		{0, 100},
		{100, 100},
		{140, 100}, // target 96: moved less than a step
		{200, 90},  // target 90
		{210, 90},  // target 89: within the step
		{190, 90},  // target 91: within the step
		{550, 55},
		{5000, 10}, // at or above High: Min
		{990, 10},  // target 11: within the step
		{0, 100},   // back to an end: published at once
	}
	for i, tt := range tests {
		if got := d.Observe(tt.sample); got != tt.want {
			t.Errorf("sample %d (%v): weight got %d; want %d", i, tt.sample, got, tt.want)
		}
	}
}

func TestDynamicWeightValidate(t *testing.T) {
	tests := []DynamicConfig{
		{Source: "disk"},
		{Source: SourceLoad, Low: 2, High: 1},
		{Source: SourceConnections, Min: 101},
		{Source: SourceConnections, Port: 70000},
	}
	for _, c := range tests {
		if _, err := NewDynamicWeight(c); err == nil {
			t.Errorf("NewDynamicWeight(%+v): got nil error; want one", c)
		}
	}
}

func TestEstablishedOnAndLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	// 0x157C = 5500. Two established on 5500, one listening, one established elsewhere.
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:157C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:157C 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:1585 0100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:157C 00000000000000000000000001000000:A000 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
`
	for name, body := range map[string]string{"net/tcp": tcp, "net/tcp6": tcp6, "loadavg": "0.00 0.01 0.05 1/100 42\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n, err := establishedOn(dir, 5500)
	if err != nil || n != 2 {
		t.Errorf("establishedOn got %v, %v; want 2", n, err)
	}
	if l, err := loadPerCPU(dir); err != nil || l != 0 {
		t.Errorf("loadPerCPU got %v, %v; want 0", l, err)
	}
	if _, err := establishedOn(t.TempDir(), 5500); err == nil {
		t.Error("establishedOn without /proc/net/tcp: got nil error")
	}
}

// TestDynamicWeightRunTicks: Run samples once at start and then once per Interval of its
// clock, never before, and publishes each sample's weight.
func TestDynamicWeightRunTicks(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	d, err := NewDynamicWeightWithClock(DynamicConfig{Source: SourceConnections, Low: 100, High: 1000, Interval: 5 * time.Second}, clock)
	if err != nil {
		t.Fatal(err)
	}
	// Each sample reports the weight published so far (that of the samples before it).
	seen := make(chan int, 10)
	values := []float64{5000, 0, 5000}
	var n atomic.Int32
	d.sample = func() (float64, error) {
		seen <- d.Weight()
		return values[int(n.Add(1)-1)%len(values)], nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if got := <-seen; got != 100 { // the first sample, at once
		t.Errorf("weight before any sample: got %d; want 100", got)
	}
	if err := clock.BlockUntilContext(ctx, 1); err != nil { // Run's ticker
		t.Fatal(err)
	}
	clock.Advance(5*time.Second - time.Nanosecond)
	select {
	case <-seen:
		t.Fatal("sampled again before the interval passed")
	default:
	}
	clock.Advance(time.Nanosecond)
	if got := <-seen; got != 10 {
		t.Errorf("weight after the first sample (5000): got %d; want 10", got)
	}
	clock.Advance(5 * time.Second)
	if got := <-seen; got != 100 {
		t.Errorf("weight after the second sample (0): got %d; want 100", got)
	}
}
