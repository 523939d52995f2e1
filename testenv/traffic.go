package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Traffic is a client load through one or more frontends: each worker opens a connection,
// sends a line, expects it echoed back (MsgServer), closes, and starts over. Every attempt
// that does not get its line back is a failed connection.
type Traffic struct {
	ok, failed atomic.Int64
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	mu         sync.Mutex
	errs       []string
}

// StartTraffic starts workers per address (loopback only); Stop ends it.
func StartTraffic(addrs []string, workers int) (*Traffic, error) {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("testenv: traffic to %q: loopback addresses only", a)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Traffic{cancel: cancel}
	for _, a := range addrs {
		for w := 0; w < workers; w++ {
			t.wg.Go(func() { t.loop(ctx, a, w) })
		}
	}
	return t, nil
}

func (t *Traffic) loop(ctx context.Context, addr string, w int) {
	for i := 0; ctx.Err() == nil; i++ {
		line := fmt.Sprintf("msg %d-%d", w, i)
		if err := roundTrip(addr, line); err != nil {
			t.failed.Add(1)
			t.mu.Lock()
			if len(t.errs) < 20 {
				t.errs = append(t.errs, time.Now().Format("15:04:05.000")+" "+addr+": "+err.Error())
			}
			t.mu.Unlock()
		} else {
			t.ok.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func roundTrip(addr, line string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != line {
		return fmt.Errorf("got %q back; want %q", got, line)
	}
	return nil
}

// Counts returns the connections that worked and that failed so far.
func (t *Traffic) Counts() (ok, failed int64) { return t.ok.Load(), t.failed.Load() }

// Errors returns the first failures (up to 20), with their time.
func (t *Traffic) Errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}

// Stop ends the load and waits for the workers; it returns the final counts.
func (t *Traffic) Stop() (ok, failed int64) {
	t.cancel()
	t.wg.Wait()
	return t.Counts()
}
