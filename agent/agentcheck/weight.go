package agentcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// Sources of the dynamic weight.
const (
	SourceConnections = "connections" // established TCP connections on a local port
	SourceLoad        = "load"        // 1-minute load average per CPU
)

// DynamicConfig scales the weight sent with "up" down as the node gets busier: full weight
// at or below Low, Min percent at or above High, linear in between, and a new weight is only
// published when it moved by at least Step percent (or reached an end), so a value wobbling
// around a boundary does not flap the weight.
type DynamicConfig struct {
	Source   string // SourceConnections or SourceLoad
	Port     int    // connections: the local port (default 5500, X-Road's message port)
	Low      float64
	High     float64
	Min      int // percent, default 10
	Step     int // percent, default 10
	Interval time.Duration
	ProcDir  string // default /proc (tests point it elsewhere)
}

func (d DynamicConfig) withDefaults() DynamicConfig {
	if d.Port == 0 {
		d.Port = 5500
	}
	if d.Low == 0 && d.High == 0 {
		d.Low, d.High = 100, 1000
		if d.Source == SourceLoad {
			d.Low, d.High = 0.5, 1.0
		}
	}
	if d.Min == 0 {
		d.Min = 10
	}
	if d.Step == 0 {
		d.Step = 10
	}
	if d.Interval == 0 {
		d.Interval = 2 * time.Second
	}
	if d.ProcDir == "" {
		d.ProcDir = "/proc"
	}
	return d
}

func (d DynamicConfig) validate() error {
	switch {
	case d.Source != SourceConnections && d.Source != SourceLoad:
		return fmt.Errorf("source %q: want connections or load", d.Source)
	case d.Port < 1 || d.Port > 65535:
		return fmt.Errorf("port %d: not a TCP port", d.Port)
	case d.High <= d.Low:
		return fmt.Errorf("high (%g) must be above low (%g)", d.High, d.Low)
	case d.Min < 1 || d.Min > 100:
		return fmt.Errorf("min %d%%: want 1-100 (0%% would drain the node: use maintenance)", d.Min)
	case d.Step < 1 || d.Step > 100:
		return fmt.Errorf("step %d%%: want 1-100", d.Step)
	}
	return nil
}

// DynamicWeight samples the node's load and keeps the current weight.
type DynamicWeight struct {
	cfg    DynamicConfig
	clock  clockwork.Clock
	sample func() (float64, error)
	cur    atomic.Int32
	errs   atomic.Int64 // failed samples, for /status
}

// NewDynamicWeight validates cfg; the weight starts at 100 until Run samples.
func NewDynamicWeight(cfg DynamicConfig) (*DynamicWeight, error) {
	return NewDynamicWeightWithClock(cfg, clockwork.NewRealClock())
}

// NewDynamicWeightWithClock is NewDynamicWeight with an injected clock (Run's ticker), for tests.
func NewDynamicWeightWithClock(cfg DynamicConfig, clock clockwork.Clock) (*DynamicWeight, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("agent-check dynamic weight: %w", err)
	}
	d := &DynamicWeight{cfg: cfg, clock: clock}
	d.cur.Store(100)
	if cfg.Source == SourceLoad {
		d.sample = func() (float64, error) { return loadPerCPU(cfg.ProcDir) }
	} else {
		d.sample = func() (float64, error) { return establishedOn(cfg.ProcDir, cfg.Port) }
	}
	return d, nil
}

// Weight is the current weight in percent (1-100).
func (d *DynamicWeight) Weight() int { return int(d.cur.Load()) }

// Run samples every Interval until ctx ends. A failed sample keeps the last weight.
func (d *DynamicWeight) Run(ctx context.Context) {
	t := d.clock.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		if v, err := d.sample(); err == nil {
			d.Observe(v)
		} else {
			d.errs.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

// Observe feeds one sample and returns the (possibly unchanged) weight.
func (d *DynamicWeight) Observe(v float64) int {
	next := hysteresis(int(d.cur.Load()), target(d.cfg, v), d.cfg)
	d.cur.Store(int32(next))
	return next
}

// target maps a sample to a weight: 100 at or below Low, Min at or above High, linear between.
func target(c DynamicConfig, v float64) int {
	switch {
	case v <= c.Low:
		return 100
	case v >= c.High:
		return c.Min
	}
	frac := (v - c.Low) / (c.High - c.Low)
	w := 100 - int(frac*float64(100-c.Min)+0.5)
	return max(c.Min, min(100, w))
}

// hysteresis publishes want only when it moved at least Step from cur, or hit an end.
func hysteresis(cur, want int, c DynamicConfig) int {
	diff := want - cur
	if diff < 0 {
		diff = -diff
	}
	if diff >= c.Step || (want != cur && (want == 100 || want == c.Min)) {
		return want
	}
	return cur
}

// establishedOn counts ESTABLISHED TCP connections (IPv4 and IPv6) whose local port is port.
func establishedOn(procDir string, port int) (float64, error) {
	n, found := 0, false
	for _, name := range []string{"net/tcp", "net/tcp6"} {
		f, err := os.Open(filepath.Join(procDir, name))
		if err != nil {
			continue
		}
		found = true
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "01" { // 01 = ESTABLISHED
				continue
			}
			i := strings.LastIndexByte(fields[1], ':')
			if i < 0 {
				continue
			}
			p, err := strconv.ParseUint(fields[1][i+1:], 16, 16)
			if err == nil && int(p) == port {
				n++
			}
		}
		f.Close()
	}
	if !found {
		return 0, errors.New("no /proc/net/tcp")
	}
	return float64(n), nil
}

// loadPerCPU is the 1-minute load average divided by the number of CPUs.
func loadPerCPU(procDir string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(procDir, "loadavg"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("empty loadavg")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("loadavg %q: %w", f[0], err)
	}
	return v / float64(runtime.NumCPU()), nil
}
