// Command awsbench measures, on a loopback 3-node cluster that is both behind a real HAProxy
// and in a target group of the local ELBv2 endpoint (testenv/elbv2), the time from
// "lbadapter drain --no-wait" to the endpoint showing the target draining, next to the same
// command against HAProxy, and the CPU time and peak RSS of one "lbadapter status" for each
// balancer. It prints one Markdown section; bench/32-aws.sh runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/bench/internal/measure"
	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/elbv2"
)

func main() { os.Exit(run()) }

func run() int {
	lbagent := flag.String("lbagent", "bin/lbagent", "lbagent binary")
	lbadapter := flag.String("lbadapter", "bin/lbadapter", "lbadapter binary")
	drains := flag.Int("drains", 20, "drain measurements per balancer")
	statuses := flag.Int("statuses", 10, "status runs per config")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	if err := bench(ctx, *lbagent, *lbadapter, *drains, *statuses); err != nil {
		fmt.Fprintln(os.Stderr, "awsbench:", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, lbagent, lbadapter string, drains, statuses int) error {
	c, err := testenv.StartCluster(ctx, testenv.ClusterOptions{LBAgent: lbagent, Check: "inter 2s fall 3 rise 2", AgentInter: "2s",
		ELBv2: true, ELBv2Check: elbv2.HealthCheck{Interval: 5 * time.Second}, ELBv2DelaySeconds: 300})
	if err != nil {
		return err
	}
	defer c.Close()
	full, err := os.ReadFile(c.ConfigPath)
	if err != nil {
		return err
	}
	hap, nlb, _ := strings.Cut(string(full), "[balancer \"nlb\"]")
	nodes := nlb[strings.Index(nlb, "\n[node"):]
	haproxyINI := filepath.Join(c.Dir, "haproxy.ini")
	nlbINI := filepath.Join(c.Dir, "nlb.ini")
	if err := os.WriteFile(haproxyINI, []byte(hap+nodes), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(nlbINI, []byte("[balancer \"nlb\"]"+nlb), 0o600); err != nil {
		return err
	}
	env := append(os.Environ(), c.AWSEnv()...)
	lbadapterCmd := func(cfg string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, lbadapter, append([]string{"--config", cfg}, args...)...)
		cmd.Env = env
		return cmd
	}
	ss2 := c.Node("ss2")

	loadavg := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		loadavg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	// Drain --no-wait until the balancer shows it, interleaved: HAProxy, then ELBv2.
	var hapTimes, nlbTimes []time.Duration
	for range drains {
		d, err := timeUntil(ctx, lbadapterCmd(haproxyINI, "drain", "ss2", "--no-wait"), func() bool {
			st, _, err := c.ServerStatus(ctx, "ss2")
			return err == nil && strings.HasPrefix(st, "DRAIN")
		})
		if err != nil {
			return fmt.Errorf("haproxy drain: %w", err)
		}
		hapTimes = append(hapTimes, d)
		if _, err := c.HAProxy.CLI(ctx, "set server "+c.Backend+"/ss2 state ready"); err != nil {
			return err
		}
		d, err = timeUntil(ctx, lbadapterCmd(nlbINI, "drain", "ss2", "--no-wait"), func() bool {
			return c.ELBv2.Health(c.TargetGroupARN, ss2.IP, ss2.MsgPort()).State == elbv2.StateDraining
		})
		if err != nil {
			return fmt.Errorf("nlb drain: %w", err)
		}
		nlbTimes = append(nlbTimes, d)
		if err := c.ELBv2.Register(c.TargetGroupARN, ss2.IP, ss2.MsgPort()); err != nil {
			return err
		}
	}
	slices.Sort(hapTimes)
	slices.Sort(nlbTimes)

	// CPU and RSS of one status call, interleaved.
	type usage struct {
		cpu, wall []time.Duration
		rss       []int64
	}
	configs := []struct{ name, path string }{{"HAProxy (runtime API)", haproxyINI}, {"ELBv2 target group (SDK, one DescribeTargetHealth)", nlbINI}, {"both", c.ConfigPath}}
	use := make([]usage, len(configs))
	for range statuses {
		for i, cfg := range configs {
			cmd := lbadapterCmd(cfg.path, "status")
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("status %s: %v\n%s", cfg.name, err, out)
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			use[i].wall = append(use[i].wall, time.Since(start))
			use[i].cpu = append(use[i].cpu, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()))
			use[i].rss = append(use[i].rss, ru.Maxrss)
		}
	}

	fmt.Printf("## lbadapter with an AWS ELBv2 target group vs HAProxy (bench/32-aws.sh)\n\n")
	fmt.Printf("3-node loopback cluster (lbagent on 127.0.0.2-4) behind a real HAProxy %s and in a target group of the\n", measure.HAProxyVersion())
	fmt.Printf("local ELBv2-compatible endpoint (`testenv/elbv2`: Query protocol, SigV4 verified, in the benchmark's process).\n")
	fmt.Printf("lbadapter reaches the endpoint through aws-sdk-go-v2 on 127.0.0.1 (HTTP, no TLS: real AWS adds TLS and the network).\n")
	fmt.Printf("Load average when the measurements started (a shared machine): %s.\n\n", loadavg)
	fmt.Printf("### From `lbadapter drain ss2 --no-wait` to the balancer showing ss2 draining (%d runs each, interleaved)\n\n", drains)
	fmt.Printf("Clock starts before the command is spawned; it stops when HAProxy's `show stat` first shows ss2 DRAIN\n")
	fmt.Printf("(polled every 2 ms), or when the endpoint's target state first reads `draining` (polled every 2 ms).\n\n")
	fmt.Printf("| balancer | median | p90 | max |\n|---|---|---|---|\n")
	fmt.Printf("| ELBv2 target group (DeregisterTargets) | %s | %s | %s |\n", measure.Ms(measure.Median(nlbTimes), 1), measure.Ms(measure.Percentile(nlbTimes, 90), 1), measure.Ms(nlbTimes[len(nlbTimes)-1], 1))
	fmt.Printf("| anchor: HAProxy (`set server … state drain`) | %s | %s | %s |\n\n", measure.Ms(measure.Median(hapTimes), 1), measure.Ms(measure.Percentile(hapTimes, 90), 1), measure.Ms(hapTimes[len(hapTimes)-1], 1))
	fmt.Printf("### One `lbadapter status` (3 nodes; %d runs each, interleaved)\n\n", statuses)
	fmt.Printf("CPU = user + system time of the lbadapter process (getrusage of the child), RSS = its peak resident set.\n\n")
	fmt.Printf("| config | CPU median | CPU max | wall median | peak RSS median |\n|---|---|---|---|---|\n")
	for i, cfg := range configs {
		u := use[i]
		slices.Sort(u.cpu)
		slices.Sort(u.wall)
		slices.Sort(u.rss)
		fmt.Printf("| %s | %s | %s | %s | %.1f MB |\n", cfg.name, measure.Ms(measure.Median(u.cpu), 1), measure.Ms(u.cpu[len(u.cpu)-1], 1), measure.Ms(measure.Median(u.wall), 1), float64(u.rss[len(u.rss)/2])/1024)
	}
	fmt.Printf("\nCommands: `lbadapter --config nlb.ini drain ss2 --no-wait`, `lbadapter --config haproxy.ini drain ss2 --no-wait`, ")
	fmt.Printf("`lbadapter --config {haproxy,nlb,both}.ini status`, from `go run ./bench/awsbench -drains %d -statuses %d` (bench/32-aws.sh).\n", drains, statuses)
	return nil
}

// timeUntil starts cmd and returns the time from just before the start until shown() is
// true (polled every 2 ms); cmd must succeed too.
func timeUntil(ctx context.Context, cmd *exec.Cmd, shown func() bool) (time.Duration, error) {
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for !shown() {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case err := <-exited:
			if err != nil {
				return 0, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
			}
			exited = nil
		case <-time.After(2 * time.Millisecond):
		}
	}
	d := time.Since(start)
	if exited != nil {
		if err := <-exited; err != nil {
			return 0, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
		}
	}
	return d, nil
}
