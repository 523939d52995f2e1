// Command agentload measures an agent-check port: workers open a new TCP connection for every
// answer (as HAProxy does), read one line, and close. With -serve it instead runs lbagent's
// agent-check server over a healthy verdict, so the load and the server are separate processes.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

func main() { os.Exit(run()) }

func run() int {
	serve := flag.String("serve", "", "run an agent-check server on this loopback address instead of loading one")
	addr := flag.String("addr", "127.0.0.1:5589", "agent-check address to load")
	conc := flag.Int("c", 16, "concurrent connections")
	dur := flag.Duration("d", 5*time.Second, "duration")
	expect := flag.String("expect", "up", "every line must start with this")
	flag.Parse()
	if *serve != "" {
		return serveAgent(*serve)
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(os.Stderr, "agentload: -addr %q: want a loopback host:port\n", *addr)
		return 2
	}
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 2 * time.Second}
			for ctx.Err() == nil {
				err := one(ctx, &d, *addr, *expect)
				switch {
				case err == nil:
					ok.Add(1)
				case ctx.Err() == nil:
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("answers=%d errors=%d seconds=%.2f per_second=%.0f\n", ok.Load(), bad.Load(), el, float64(ok.Load())/el)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "agentload: first error:", e)
	}
	return 0
}

// one makes one agent check.
func one(ctx context.Context, d *net.Dialer, addr, expect string) error {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	// Close with a reset once the line is in: no TIME_WAIT piles up on either side, so a
	// run of many short connections measures the server, not the loopback's port table.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	line, err := bufio.NewReaderSize(c, 256).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, expect) {
		return fmt.Errorf("line %q does not start with %q", line, expect)
	}
	return nil
}

func serveAgent(addr string) int {
	store := verdict.NewStore("secondary", []check.Spec{{Name: "Global conf validity"}})
	store.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusPass})
	// The load comes from loopback: listed as the balancers, it is not rate-limited per address.
	srv, err := agentcheck.New(agentcheck.Config{Listen: addr, Balancers: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, store, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentload:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.ListenAndServe(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "agentload:", err)
		return 1
	}
	return 0
}
