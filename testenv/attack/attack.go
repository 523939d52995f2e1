// Package attack has the hostile clients that the attack tests and `make bench` point at a
// node's public ports: idle connection floods, pipelining, large bodies, malformed requests,
// churning and non-reading agent-check clients. Every attack is bounded in count and time and
// dials loopback addresses only (127.0.0.0/8); each takes its source addresses as arguments.
package attack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sources returns n loopback source addresses, 127.0.0.<first> onwards (wrapping within
// 127.0.<k>.x).
func Sources(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		k := first + i
		out[i] = fmt.Sprintf("127.0.%d.%d", k/250, 2+k%250)
	}
	return out
}

// Dial connects from the loopback source address from to addr.
func Dial(ctx context.Context, from, addr string) (net.Conn, error) {
	if !isLoopback(addr) {
		return nil, fmt.Errorf("%w: %s", ErrNotLoopback, addr)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.DialContext(ctx, "tcp", addr)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// Holder keeps connections open until Close.
type Holder struct {
	mu    sync.Mutex
	conns []net.Conn
	// Failed counts dials that failed (refused, reset, out of descriptors).
	Failed atomic.Int64
}

// Len is the number of connections held.
func (h *Holder) Len() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.conns) }

// Close closes every held connection.
func (h *Holder) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

// each dials n connections to addr, spread over the source addresses, conc at a time, and
// runs fn on each one that connects; it returns the number of failed dials.
func each(ctx context.Context, addr string, n, conc int, sources []string, fn func(i int, c net.Conn)) int64 {
	var failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := Dial(ctx, sources[i%len(sources)], addr)
			if err != nil {
				failed.Add(1)
				return
			}
			fn(i, c)
		}()
	}
	wg.Wait()
	return failed.Load()
}

// IdleFlood opens n connections to addr spread over the source addresses and holds them
// without sending anything, as a client that wants to exhaust descriptors.
func IdleFlood(ctx context.Context, addr string, n int, sources []string) *Holder {
	h := &Holder{}
	failed := each(ctx, addr, n, 64, sources, func(_ int, c net.Conn) {
		h.mu.Lock()
		h.conns = append(h.conns, c)
		h.mu.Unlock()
	})
	h.Failed.Add(failed)
	return h
}

// Pipeline keeps conns connections from the sources busy until ctx ends, each writing batches
// of pipelined GETs and reading the answers. It returns the number of answers read.
func Pipeline(ctx context.Context, addr string, conns int, sources []string) int64 {
	var answers atomic.Int64
	batch := []byte(strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 64))
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := Dial(ctx, sources[i%len(sources)], addr)
				if err != nil {
					sleep(ctx, 10*time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				r := bufio.NewReaderSize(c, 64<<10)
				for ctx.Err() == nil {
					if _, err := c.Write(batch); err != nil {
						break
					}
					n, err := readAnswers(r, 64)
					answers.Add(int64(n))
					if err != nil {
						break
					}
				}
				stop()
				c.Close()
			}
		}()
	}
	wg.Wait()
	return answers.Load()
}

// readAnswers reads n HTTP answers; it returns how many it read.
func readAnswers(r *bufio.Reader, n int) (int, error) {
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return i, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return n, nil
}

// Bodies sends n requests each announcing and sending a body of size bytes, conc at a time,
// and returns the status codes seen (0: no answer).
func Bodies(ctx context.Context, addr string, n, size, conc int, sources []string) []int {
	codes := make([]int, n)
	chunk := make([]byte, 64<<10)
	each(ctx, addr, n, conc, sources, func(i int, c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size); err != nil {
			return
		}
		go func() { // write the body while the answer may already come
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := c.Write(chunk[:min(len(chunk), size-sent)]); err != nil {
					return
				}
			}
		}()
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			codes[i] = resp.StatusCode
			resp.Body.Close()
		}
	})
	return codes
}

// Garbage is a set of malformed requests.
var Garbage = []string{
	"\x00\x01\x02\x03 not http\r\n\r\n",
	"GET\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
	"GET / HTTP/1.1\r\n" + strings.Repeat("X-Long: "+strings.Repeat("a", 1000)+"\r\n", 8) + "\r\n",
	"GET / HTTP/9.9\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	"{\"level\":\"error\",\"message\":\"injected\"}\r\n\r\n",
}

// Malformed sends n malformed requests, conc at a time, each on its own connection.
func Malformed(ctx context.Context, addr string, n, conc int, sources []string) {
	each(ctx, addr, n, conc, sources, func(i int, c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, Garbage[i%len(Garbage)])
		_, _ = io.Copy(io.Discard, c)
	})
}

// AgentChurn connects to an agent-check port again and again from conc goroutines until ctx
// ends; half of them read the line, half close at once. It returns the connections made.
func AgentChurn(ctx context.Context, addr string, conc int, sources []string) int64 {
	var made atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for ctx.Err() == nil {
				c, err := Dial(ctx, sources[i%len(sources)], addr)
				if err != nil {
					sleep(ctx, time.Millisecond)
					continue
				}
				made.Add(1)
				if i%2 == 0 {
					_ = c.SetReadDeadline(time.Now().Add(time.Second))
					_, _ = c.Read(buf)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	return made.Load()
}

// NonReaders opens n connections that never read nor close, until ctx ends.
func NonReaders(ctx context.Context, addr string, n int, sources []string) *Holder {
	return IdleFlood(ctx, addr, n, sources)
}

// Probe is one balancer probe: a new connection from source, GET path, the answer.
type Probe struct {
	Code    int
	Body    string
	Latency time.Duration
	Err     error
}

// HTTPProbe probes addr as HAProxy does: a new connection per probe, one GET, close.
func HTTPProbe(ctx context.Context, from, addr, path string) Probe {
	start := time.Now()
	c, err := Dial(ctx, from, addr)
	if err != nil {
		return Probe{Err: err, Latency: time.Since(start)}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		return Probe{Err: err, Latency: time.Since(start)}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return Probe{Err: err, Latency: time.Since(start)}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return Probe{Code: resp.StatusCode, Body: string(b), Err: err, Latency: time.Since(start)}
}

// AgentProbe reads the agent-check line as HAProxy does (connect, read until close).
func AgentProbe(ctx context.Context, from, addr string) Probe {
	start := time.Now()
	c, err := Dial(ctx, from, addr)
	if err != nil {
		return Probe{Err: err, Latency: time.Since(start)}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return Probe{Body: line, Err: err, Latency: time.Since(start)}
}

// Probes runs n probes every interval (or until ctx ends) and returns them.
func Probes(ctx context.Context, n int, interval time.Duration, probe func(context.Context) Probe) []Probe {
	var out []Probe
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; i < n; i++ {
		out = append(out, probe(ctx))
		select {
		case <-t.C:
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// Percentile returns the p-th percentile (0-100) of the probes' latencies.
func Percentile(ps []Probe, p float64) time.Duration {
	if len(ps) == 0 {
		return 0
	}
	ls := make([]time.Duration, len(ps))
	for i, x := range ps {
		ls[i] = x.Latency
	}
	slices.Sort(ls)
	i := int(float64(len(ls)-1) * p / 100)
	return ls[i]
}

// Failures describes the probes whose answer is not want (code and body), "" when none.
func Failures(ps []Probe, wantCode int, wantBody string) string {
	var bad []string
	for i, p := range ps {
		if p.Err != nil || p.Code != wantCode || p.Body != wantBody {
			bad = append(bad, "#"+strconv.Itoa(i)+": "+describe(p))
		}
	}
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
	}
	return strings.Join(bad, "; ")
}

func describe(p Probe) string {
	if p.Err != nil {
		return p.Err.Error()
	}
	return fmt.Sprintf("%d %q", p.Code, p.Body)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// ErrNotLoopback is returned for a target outside 127.0.0.0/8 and ::1.
var ErrNotLoopback = errors.New("attack: not a loopback address")

// Slow opens n connections that send a request head one byte every interval, until ctx ends
// or the server closes them; it returns how many the server closed.
func Slow(ctx context.Context, addr string, n int, interval time.Duration, sources []string) int64 {
	var closed atomic.Int64
	head := []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 4000) + "\r\n\r\n")
	each(ctx, addr, n, n, sources, func(_ int, c net.Conn) {
		defer c.Close()
		for _, b := range head {
			if _, err := c.Write([]byte{b}); err != nil {
				closed.Add(1)
				return
			}
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return
			}
		}
	})
	return closed.Load()
}
