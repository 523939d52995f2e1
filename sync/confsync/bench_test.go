package confsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// BenchmarkIdlePass measures a no-change pass of a kept-connection worker on an
// /etc/xroad-like tree (40 directories, 2,000 files), client and server CPU (the sshd
// session processes, from /proc). Passes are 1 s apart on an injected clock, so the
// full listing runs every FullScan/1s passes as it does in production.
func BenchmarkIdlePass(b *testing.B) {
	r := newRig(b)
	names := []string{"conf.d", "signer", "ssl", "services", "backup.d", "jetty", "nginx", "proxy", "confclient", "ds"}
	for i := range 40 {
		d := names[i%len(names)]
		if i >= len(names) {
			d += "/sub" + strconv.Itoa(i)
		}
		for j := range 50 {
			r.write(b, fmt.Sprintf("%s/file%03d.xml", d, j), strings.Repeat("x", 200+j*37), 0o644)
		}
	}
	clock := clockwork.NewFakeClockAt(time.Now().Add(time.Hour)) // directories' times are long settled
	w := r.clockedWorker(b, clock)
	if _, err := w.Once(context.Background()); err != nil {
		b.Fatal(err)
	}
	pid := r.sshd.PID()
	s0, c0 := serverTicks(pid), cpuSelf()
	b.ResetTimer()
	for range b.N {
		clock.Advance(time.Second)
		res, err := w.Once(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Items) != 0 {
			b.Fatalf("idle pass changed %d entries", len(res.Items))
		}
	}
	b.StopTimer()
	hz := 100.0 // USER_HZ on Linux
	b.ReportMetric(float64(serverTicks(pid)-s0)*1000/hz/float64(b.N), "server-ms/op")
	b.ReportMetric(float64(cpuSelf()-c0)/1e6/float64(b.N), "client-ms/op")
}

// cpuSelf is this process's user+system CPU time in ns.
func cpuSelf() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// serverTicks sums user+system clock ticks of pid's descendants (the sshd session
// processes of the benchmark's connection).
func serverTicks(pid int) int64 {
	var t int64
	for _, p := range descendantsOf(pid) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		for _, i := range []int{11, 12} { // utime, stime
			n, _ := strconv.ParseInt(f[i], 10, 64)
			t += n
		}
	}
	return t
}

func descendantsOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		parent[p], _ = strconv.Atoi(f[1])
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
