// Command drainbench measures, on a loopback 3-node cluster behind a real HAProxy, the time
// from "lbadapter drain --no-wait" to HAProxy showing DRAIN (next to the same command sent with
// socat), and the time from a check failure to HAProxy showing DOWN with and without push.
// It prints one Markdown section; bench/31-drain.sh runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/bench/internal/measure"
	"github.com/xroad-lb/lbkit/testenv"
)

func main() { os.Exit(run()) }

func run() int {
	lbagent := flag.String("lbagent", "bin/lbagent", "lbagent binary")
	lbadapter := flag.String("lbadapter", "bin/lbadapter", "lbadapter binary")
	drains := flag.Int("drains", 20, "drain measurements per method")
	failures := flag.Int("failures", 3, "failure measurements per HAProxy setup")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	if err := bench(ctx, *lbagent, *lbadapter, *drains, *failures); err != nil {
		fmt.Fprintln(os.Stderr, "drainbench:", err)
		return 1
	}
	return 0
}

const prodCheck = "inter 2s fall 3 rise 2"

func bench(ctx context.Context, lbagent, lbadapter string, drains, failures int) error {
	c, err := testenv.StartCluster(ctx, testenv.ClusterOptions{LBAgent: lbagent, Check: prodCheck, AgentInter: "2s"})
	if err != nil {
		return err
	}
	defer c.Close()
	drainCmd := []string{lbadapter, "--config", c.ConfigPath, "drain", "ss2", "--no-wait"}
	socatCmd := fmt.Sprintf(`echo "set server %s/ss2 state drain" | socat stdio UNIX-CONNECT:%s`, c.Backend, c.HAProxy.AdminSocket)
	lb, err := measureDrain(ctx, c, drains, func() error { return exec.CommandContext(ctx, drainCmd[0], drainCmd[1:]...).Run() })
	if err != nil {
		return fmt.Errorf("lbadapter drain: %w", err)
	}
	so, err := measureDrain(ctx, c, drains, func() error { return exec.CommandContext(ctx, "bash", "-c", socatCmd).Run() })
	if err != nil {
		return fmt.Errorf("socat drain: %w", err)
	}
	c.Close()

	type setup struct {
		name string
		opts testenv.ClusterOptions
	}
	setups := []setup{
		{"HTTP check only (`check port <health> " + prodCheck + "`)", testenv.ClusterOptions{NoAgentCheck: true}},
		{"HTTP check + agent-check (`agent-inter 2s`)", testenv.ClusterOptions{AgentInter: "2s"}},
		{"HTTP check + push (`[push]` in lbagent.ini)", testenv.ClusterOptions{NoAgentCheck: true, Push: true}},
	}
	var rows []string
	for _, s := range setups {
		s.opts.LBAgent, s.opts.Check = lbagent, prodCheck
		d, err := measureFailure(ctx, s.opts, failures)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s |", s.name, measure.Ms(measure.Median(d), 1), measure.Ms(d[0], 1), measure.Ms(d[len(d)-1], 1)))
	}

	fmt.Printf("## Drain and failure latency with HAProxy (bench/31-drain.sh)\n\n")
	fmt.Printf("3-node loopback cluster (lbagent on 127.0.0.2-4, message stand-ins), real HAProxy %s, ", measure.HAProxyVersion())
	fmt.Printf("server lines `check port <health> %s`, `on-marked-down shutdown-sessions`.\n\n", prodCheck)
	fmt.Printf("### From the command to HAProxy showing DRAIN (%d runs each)\n\n", drains)
	fmt.Printf("Clock starts before the command is spawned and stops when `show stat` first shows ss2 as DRAIN.\n\n")
	fmt.Printf("| command | median | p90 | max |\n|---|---|---|---|\n")
	fmt.Printf("| `%s` | %s | %s | %s |\n", strings.Join(append([]string{"lbadapter"}, drainCmd[1:]...), " "), measure.Ms(measure.Median(lb), 1), measure.Ms(measure.Percentile(lb, 90), 1), measure.Ms(lb[len(lb)-1], 1))
	fmt.Printf("| anchor: `echo \"set server xroad/ss2 state drain\" \\| socat stdio UNIX-CONNECT:admin.sock` | %s | %s | %s |\n\n", measure.Ms(measure.Median(so), 1), measure.Ms(measure.Percentile(so, 90), 1), measure.Ms(so[len(so)-1], 1))
	fmt.Printf("### From a failing check to HAProxy showing DOWN (%d runs each)\n\n", failures)
	fmt.Printf("The node's globalconf is made expired at t=0 (lbagent re-checks every 200ms: `success-ttl = 200ms`); ")
	fmt.Printf("the clock stops when `show stat` first shows the server DOWN. inter × fall = 6s.\n\n")
	fmt.Printf("| HAProxy setup | median | min | max |\n|---|---|---|---|\n%s\n\n", strings.Join(rows, "\n"))
	fmt.Printf("Command: `go run ./bench/drainbench -drains %d -failures %d` (from bench/31-drain.sh).\n", drains, failures)
	return nil
}

// measureDrain times do() until HAProxy shows ss2 DRAIN, then sets it ready again.
func measureDrain(ctx context.Context, c *testenv.Cluster, n int, do func() error) ([]time.Duration, error) {
	var out []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := do(); err != nil {
			return nil, err
		}
		if err := waitStatus(ctx, c, "ss2", "DRAIN"); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		if _, err := c.HAProxy.CLI(ctx, "set server "+c.Backend+"/ss2 state ready"); err != nil {
			return nil, err
		}
		if err := waitStatus(ctx, c, "ss2", "UP"); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// measureFailure starts a cluster and times Break → DOWN on ss3, n times.
func measureFailure(ctx context.Context, opts testenv.ClusterOptions, n int) ([]time.Duration, error) {
	c, err := testenv.StartCluster(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	node := c.Node("ss3")
	var out []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := node.XRoad.Break(testenv.FaultGlobalConfExpired); err != nil {
			return nil, err
		}
		if err := waitStatus(ctx, c, "ss3", "DOWN"); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		if err := node.XRoad.Fix(testenv.FaultGlobalConfExpired); err != nil {
			return nil, err
		}
		if err := waitStatus(ctx, c, "ss3", "UP"); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// waitStatus polls show stat every 2ms until the server's status starts with prefix
// ("UP" must match exactly).
func waitStatus(ctx context.Context, c *testenv.Cluster, server, prefix string) error {
	for {
		st, _, err := c.ServerStatus(ctx, server)
		if err == nil && (st == prefix || (prefix != "UP" && strings.HasPrefix(st, prefix))) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still %q, want %s: %w", server, st, prefix, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}
