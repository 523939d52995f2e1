// Command upgradebench measures lbadapter upgrade on the loopback 3-node cluster of
// testenv/upgradeenv (replication, config sync, sshd per node, HAProxy and nginx in front)
// under client traffic: the total time of the run against the sum of its steps' waits (the
// tool's own overhead is the difference), the time of each kind of step, each node's drain
// time and downtime, and the failed client connections. It prints one Markdown section;
// bench/50-upgrade.sh runs it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters/upgrade"
	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/upgradeenv"
)

func main() { os.Exit(run()) }

func run() int {
	lbagent := flag.String("lbagent", "bin/lbagent", "lbagent binary")
	lbadapter := flag.String("lbadapter", "bin/lbadapter", "lbadapter binary")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	if err := bench(ctx, *lbagent, *lbadapter); err != nil {
		fmt.Fprintln(os.Stderr, "upgradebench:", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, lbagent, lbadapter string) error {
	lbagent, _ = filepath.Abs(lbagent)
	lbadapter, _ = filepath.Abs(lbadapter)
	c, err := upgradeenv.Start(ctx, upgradeenv.Options{LBAgent: lbagent})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetNext("7.5.0-1"); err != nil {
		return err
	}
	traffic, err := testenv.StartTraffic([]string{c.Frontend, c.NginxFrontend}, 3)
	if err != nil {
		return err
	}
	state := filepath.Join(c.Base, "upgrade-state.json")
	args := []string{"--config", c.ConfigPath, "upgrade", "--command", c.Command, "--state", state, "--yes", "--poll", "200ms"}
	cmd := exec.CommandContext(ctx, lbadapter, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start)
	ok, failed := traffic.Stop()
	if runErr != nil {
		return fmt.Errorf("lbadapter upgrade: %v\n%s", runErr, out.String())
	}
	if err := c.Steady("7.5.0-1"); err != nil {
		return fmt.Errorf("after the upgrade: %w", err)
	}
	st, err := upgrade.LoadState(state)
	if err != nil {
		return err
	}
	var steps time.Duration
	byKind := map[string]time.Duration{}
	count := map[string]int{}
	for _, s := range st.Steps {
		steps += s.Took
		byKind[s.Kind] += s.Took
		count[s.Kind]++
	}
	run := st.Finished.Sub(st.Steps[0].Start)
	fmt.Println("## lbadapter upgrade: a rolling upgrade of 3 nodes under traffic")
	fmt.Println()
	fmt.Println("The loopback cluster of `testenv/upgradeenv`: lbagents on 127.0.0.2-4, a real sshd on each,")
	fmt.Println("HAProxy (checks `inter 200ms fall 3 rise 2`) and nginx in front, serverconf streamed from a")
	fmt.Println("PostgreSQL primary to a standby per secondary, config sync every 200 ms. The upgrade command")
	fmt.Println("sets the node's X-Road version file and restarts its lbagent. 3 clients through HAProxy and 3")
	fmt.Println("through nginx open one connection per message during the whole run.")
	fmt.Println()
	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| `lbadapter upgrade` wall time (start to exit: preflight, plan, %d steps, table) | %s |\n", len(st.Steps), fmtD(wall))
	fmt.Printf("| of which the steps (first step's start to the last step's end) | %s |\n", fmtD(run))
	fmt.Printf("| sum of the steps' waits (drains, node commands over SSH, health, enables) | %s |\n", fmtD(steps))
	fmt.Printf("| the tool's own overhead between steps (steps' span − their sum: checkpoints, lines) | %s |\n", fmtD(run-steps))
	fmt.Printf("| preflight, start-up and table (wall − steps' span) | %s |\n", fmtD(wall-run))
	fmt.Printf("| client connections during the upgrade | %d, **%d failed** |\n", ok+failed, failed)
	fmt.Println()
	fmt.Println("| step kind | steps | total | mean |")
	fmt.Println("|---|---|---|---|")
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return byKind[kinds[i]] > byKind[kinds[j]] })
	for _, k := range kinds {
		fmt.Printf("| %s | %d | %s | %s |\n", k, count[k], fmtD(byKind[k]), fmtD(byKind[k]/time.Duration(count[k])))
	}
	fmt.Println()
	fmt.Println("| node | version | drain | downtime (drain start to UP on every balancer) |")
	fmt.Println("|---|---|---|---|")
	for _, r := range upgrade.Summarize(st) {
		fmt.Printf("| %s | %s → %s | %s | %s |\n", r.Node, r.Before, r.After, fmtD(r.Drain), fmtD(r.Downtime))
	}
	fmt.Println()
	fmt.Println("Each node command is one SSH session on a kept connection (`ssh` exec of the node's lbagent")
	fmt.Println("or the upgrade command); a secondary's downtime includes resuming replay, waiting until it")
	fmt.Println("caught up, resuming the sync and one forced sync pass, as the guide's 7.2.3 asks.")
	fmt.Println()
	fmt.Println("```")
	fmt.Printf("go run ./e2e/upgradebench -lbagent bin/lbagent -lbadapter bin/lbadapter\n")
	fmt.Printf("# ran: lbadapter %s\n", strings.Join(args, " "))
	fmt.Println("```")
	if failed != 0 {
		return fmt.Errorf("%d client connections failed: %v", failed, traffic.Errors())
	}
	return nil
}

func fmtD(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%dm%04.1fs", int(d.Minutes()), d.Seconds()-60*float64(int(d.Minutes())))
}
