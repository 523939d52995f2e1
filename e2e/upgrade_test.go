package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters/upgrade"
	"github.com/xroad-lb/lbkit/testenv"
)

// TestUpgrade runs lbadapter upgrade on a real 3-node cluster (see upgradeCluster) with
// client traffic through HAProxy and nginx: a dry run that changes nothing, a rolling
// upgrade, a failing upgrade command and its --resume, Ctrl-C and --resume, kill -9 and
// --resume (no client connection may fail in any of them), then an offline upgrade without
// traffic.
func TestUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, HAProxy, nginx, sshd and lbagents")
	}
	u := newUpgradeCluster(t)
	traffic, err := testenv.StartTraffic([]string{u.Frontend, u.NginxFrontend}, 3)
	if err != nil {
		t.Fatal(err)
	}
	// The rolling upgrades run under traffic; the offline one (last) takes every node out.
	stopTraffic := gosync.OnceFunc(func() {
		ok, failed := traffic.Stop()
		t.Logf("traffic during the rolling upgrades: %d connections, %d failed", ok+failed, failed)
		if failed != 0 || ok == 0 {
			t.Errorf("traffic: %d ok, %d failed; want 0 failed: %v", ok, failed, traffic.Errors())
		}
	})
	defer stopTraffic()
	state := filepath.Join(t.TempDir(), "upgrade-state.json")

	t.Run("dry run changes nothing", func(t *testing.T) {
		u.setNext(t, "7.5.0-1")
		before := u.snapshot(t)
		r := u.runAdapter(t, u.upgradeArgs(state, "--command", u.Command, "--dry-run")...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"preflight: 3 agents healthy", "plan: online rolling upgrade (guide 7.2), 24 steps",
			"ss2    pause-replay   run: " + filepath.Join(u.nodeDir(u.Node("ss2")), "lbagent") + " db pause",
			"ss1    upgrade        run: " + u.Command, "ss3    sync-once      run: ", "dry run: nothing was changed"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.stdout)
			}
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("state file after a dry run: %v", err)
		}
		if after := u.snapshot(t); after != before {
			t.Errorf("the dry run changed the cluster:\nbefore %s\nafter  %s", before, after)
		}
	})

	t.Run("without --yes, answered no, changes nothing", func(t *testing.T) {
		before := u.snapshot(t)
		r := u.runAdapterAnswering(t, "n\n", u.upgradeArgs(state, "--command", u.Command)...)
		if r.code != 1 || !strings.Contains(r.stdout, "Run these 24 steps? [y/N] ") ||
			!strings.Contains(r.stderr, "not confirmed: nothing was changed (--yes skips the question)") {
			t.Errorf("exit %d; want 1 after the question and \"not confirmed\"\n%s%s", r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("state file after a no: %v", err)
		}
		if after := u.snapshot(t); after != before {
			t.Errorf("answering no changed the cluster:\nbefore %s\nafter  %s", before, after)
		}
	})

	t.Run("rolling upgrade under traffic", func(t *testing.T) {
		okBefore, _ := traffic.Counts()
		start := time.Now()
		// The operator answers the one question (the other runs pass --yes).
		r := u.runAdapterAnswering(t, "y\n", u.upgradeArgs(state, "--command", u.Command)...)
		took := time.Since(start)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "Run these 24 steps? [y/N] ") {
			t.Errorf("no question before the first step:\n%s", r.stdout)
		}
		t.Logf("lbadapter upgrade (3 nodes) took %s:\n%s", took, r.stdout)
		u.waitSteady(t, "7.5.0-1")
		u.checkOutput(t, r.stdout, 24, "7.4.0-1", "7.5.0-1")
		if ok, failed := traffic.Counts(); failed != 0 || ok-okBefore < 50 {
			t.Errorf("traffic during the upgrade: %d ok, %d failed; want many ok, 0 failed: %v", ok-okBefore, failed, traffic.Errors())
		}
		u.checkSyncFlows(t)
		st, err := upgrade.LoadState(state)
		if err != nil || !st.Complete() {
			t.Fatalf("state after the run: %+v, %v; want complete", st, err)
		}
	})

	t.Run("failed step stops, node stays drained, resume completes", func(t *testing.T) {
		u.setNext(t, "7.6.0-1")
		ss2, ss3 := u.Node("ss2"), u.Node("ss3")
		if err := u.SetFail(ss2, true); err != nil {
			t.Fatal(err)
		}
		r := u.runAdapter(t, u.upgradeArgs(state, "--command", u.Command, "--yes")...)
		if r.code != 7 {
			t.Fatalf("exit %d; want 7 (stopped)\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "ss2 | E: Sub-process /usr/bin/dpkg returned an error code (1)") {
			t.Errorf("the command's stderr is not streamed with the node prefix:\n%s", r.stdout)
		}
		re := regexp.MustCompile(`(?m)^  (lbadapter --config \S+ upgrade --resume --state \S+)$`)
		m := re.FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("no resume command in the output:\n%s", r.stdout)
		}
		if want := fmt.Sprintf("lbadapter --config %s upgrade --resume --state %s", u.ConfigPath, state); m[1] != want {
			t.Errorf("resume command %q; want %q", m[1], want)
		}
		if !regexp.MustCompile(`(?m)^ss2 +7\.5\.0-1 -> \? .*FAILED at upgrade \(drained\)$`).MatchString(r.stdout) {
			t.Errorf("table has no failed ss2 row:\n%s", r.stdout)
		}
		if !strings.Contains(r.stdout, "still drained on every balancer: ss2") {
			t.Errorf("output does not say ss2 stays drained:\n%s", r.stdout)
		}
		// ss2 drained on HAProxy and in nginx's servers file; ss3 untouched: UP, old version.
		ctx := context.Background()
		if st, _, err := u.ServerStatus(ctx, "ss2"); err != nil || !strings.HasPrefix(st, "DRAIN") && !strings.HasPrefix(st, "MAINT") {
			t.Errorf("ss2 on HAProxy: %q %v; want drained", st, err)
		}
		servers, _ := os.ReadFile(u.ServersFile)
		if !regexp.MustCompile(`(?m)^server ` + regexp.QuoteMeta(ss2.Msg.Addr) + ` .*down`).Match(servers) {
			t.Errorf("ss2 not down in nginx's servers file:\n%s", servers)
		}
		if st, _, err := u.ServerStatus(ctx, "ss3"); err != nil || st != "UP" {
			t.Errorf("ss3 on HAProxy: %q %v; want UP (untouched)", st, err)
		}
		if v := u.version(ss3); v != "7.5.0-1" {
			t.Errorf("ss3 version %q; want 7.5.0-1 (untouched)", v)
		}
		if v := u.version(u.Node("ss1")); v != "7.6.0-1" {
			t.Errorf("ss1 version %q; want 7.6.0-1", v)
		}
		st, err := upgrade.LoadState(state)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Steps {
			if s.Node == "ss3" && s.Status == upgrade.Done && s.Kind != upgrade.KindPauseReplay && s.Kind != upgrade.KindPauseSync {
				t.Errorf("ss3 step %s done; want nothing beyond the 7.2.1 pauses", s.Kind)
			}
		}
		// A new upgrade is refused while this one is unfinished.
		if r := u.runAdapter(t, u.upgradeArgs(state, "--command", u.Command, "--yes")...); r.code != 2 ||
			!strings.Contains(r.stderr, "is unfinished") || !strings.Contains(r.stderr, "--resume") || !strings.Contains(r.stderr, "--abandon") {
			t.Errorf("second upgrade: exit %d %s; want 2, refused naming --resume and --abandon", r.code, r.stderr)
		}

		if err := u.SetFail(ss2, false); err != nil {
			t.Fatal(err)
		}
		args := strings.Fields(m[1])[1:]
		r = u.runAdapter(t, append(args, "--poll", "100ms")...)
		if r.code != 0 {
			t.Fatalf("resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "resuming the upgrade started") || !strings.Contains(r.stdout, "(ss2: upgrade)") {
			t.Errorf("resume did not start at ss2's upgrade:\n%s", r.stdout)
		}
		u.waitSteady(t, "7.6.0-1")
		u.checkSyncFlows(t)
	})

	t.Run("Ctrl-C stops at a safe point, resume completes", func(t *testing.T) {
		u.setNext(t, "7.7.0-1")
		// During ss1's wait for health, right after its upgrade command.
		atSS1Upgraded := regexp.MustCompile(`^\[ ?\d+/24\] ss1 +upgrade +done`).MatchString
		so, stderr, sent, ps := u.runAndSignal(t, u.upgradeArgs(state, "--command", u.Command, "--yes"), atSS1Upgraded, syscall.SIGINT)
		if code := ps.ExitCode(); !sent || code != 7 {
			t.Fatalf("exit %d (%v), SIGINT sent %v; want 7\n%s%s", code, ps, sent, so, stderr)
		}
		if !strings.Contains(so, "interrupted: stopping after the current step") || !strings.Contains(so, "upgrade stopped: stopped on request before step") {
			t.Errorf("output:\n%s", so)
		}
		st, err := upgrade.LoadState(state)
		if err != nil {
			t.Fatal(err)
		}
		i := st.Next()
		if i == len(st.Steps) || st.Steps[i].Status != upgrade.Pending || i == 0 || st.Steps[i-1].Status != upgrade.Done {
			t.Fatalf("state after Ctrl-C: next step %d %+v; want a pending step after a done one", i, st.Steps[min(i, len(st.Steps)-1)])
		}
		// The step that was running when Ctrl-C came (ss1's wait-healthy, or a later one
		// when it was quicker than the signal) finished: a safe point, before the end.
		at := -1
		for j, s := range st.Steps {
			if s.Node == "ss1" && s.Kind == upgrade.KindWaitHealthy {
				at = j
			}
		}
		if i <= at || i > at+3 {
			t.Errorf("stopped before step %d (%s %s); want soon after ss1's wait-healthy (step %d)", i+1, st.Steps[i].Node, st.Steps[i].Kind, at+1)
		}
		if !strings.Contains(so, fmt.Sprintf("stopped on request before step %d of 24 (%s: %s)", i+1, st.Steps[i].Node, st.Steps[i].Kind)) {
			t.Errorf("output does not name the next step %d:\n%s", i+1, so)
		}
		r := u.runAdapter(t, u.upgradeArgs(state, "--resume")...)
		if r.code != 0 {
			t.Fatalf("resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		u.waitSteady(t, "7.7.0-1")
		u.checkOutput(t, r.stdout, 24, "7.6.0-1", "7.7.0-1")
		if r := u.runAdapter(t, u.upgradeArgs(state, "--resume")...); r.code != 0 || !strings.Contains(r.stdout, "nothing to resume") {
			t.Errorf("second resume: exit %d %s", r.code, r.stdout)
		}
	})

	// kill -9 of lbadapter in the middle of a node's upgrade command: the state file stays
	// whole (written atomically after each step), the node stays drained, the lock dies with
	// the process, and --resume runs the interrupted step again and completes.
	t.Run("kill -9 mid-step, resume completes", func(t *testing.T) {
		u.setNext(t, "7.7.5-1")
		inSS2Upgrade := func(line string) bool { return strings.HasPrefix(line, "ss2 | Unpacking xroad-proxy") }
		so, stderr, killed, ps := u.runAndSignal(t, u.upgradeArgs(state, "--command", u.Command, "--yes"), inSS2Upgrade, syscall.SIGKILL)
		if !killed || ps.ExitCode() != -1 {
			t.Fatalf("not killed mid-step (killed %v, %v):\n%s%s", killed, ps, so, stderr)
		}
		st, err := upgrade.LoadState(state)
		if err != nil {
			t.Fatalf("state file after kill -9: %v", err)
		}
		i := st.Next()
		if i == len(st.Steps) || st.Steps[i].Node != "ss2" || st.Steps[i].Kind != upgrade.KindUpgrade || st.Steps[i].Status != upgrade.Pending {
			t.Fatalf("state after kill -9: next step %d %+v; want ss2's upgrade, pending", i, st.Steps[min(i, len(st.Steps)-1)])
		}
		if hs, _, err := u.ServerStatus(context.Background(), "ss2"); err != nil || !strings.HasPrefix(hs, "DRAIN") && !strings.HasPrefix(hs, "MAINT") {
			t.Errorf("ss2 on HAProxy after kill -9: %q %v; want drained", hs, err)
		}
		r := u.runAdapter(t, u.upgradeArgs(state, "--resume")...)
		if r.code != 0 {
			t.Fatalf("resume after kill -9: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "(ss2: upgrade)") {
			t.Errorf("resume did not start at ss2's upgrade:\n%s", r.stdout)
		}
		u.waitSteady(t, "7.7.5-1")
		u.checkSyncFlows(t)
	})

	// --offline (the guide's 7.1): every node out at once, the primary, the changes reach
	// the secondaries, the secondaries, every node back. No traffic: nothing can serve it.
	t.Run("offline upgrade", func(t *testing.T) {
		stopTraffic()
		u.setNext(t, "7.8.0-1")
		r := u.runAdapter(t, u.upgradeArgs(state, "--command", u.Command, "--offline", "--yes")...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		t.Logf("lbadapter upgrade --offline (3 nodes):\n%s", r.stdout)
		// 7.1's order: all three drained before the primary's upgrade, the secondaries
		// caught up and synced before theirs, all enabled at the end.
		var order []string
		for _, m := range regexp.MustCompile(`(?m)^\[ ?\d+/16\] (ss\d) +(\S+) +done in `).FindAllStringSubmatch(r.stdout, -1) {
			order = append(order, m[1]+" "+m[2])
		}
		want := []string{"ss1 drain", "ss2 drain", "ss3 drain", "ss1 upgrade", "ss1 wait-healthy",
			"ss2 wait-caught-up", "ss2 sync-once", "ss2 upgrade", "ss2 wait-healthy",
			"ss3 wait-caught-up", "ss3 sync-once", "ss3 upgrade", "ss3 wait-healthy",
			"ss1 enable", "ss2 enable", "ss3 enable"}
		if strings.Join(order, ", ") != strings.Join(want, ", ") {
			t.Errorf("steps done:\n  %s\nwant\n  %s", strings.Join(order, ", "), strings.Join(want, ", "))
		}
		if !strings.Contains(r.stdout, "offline") {
			t.Errorf("the plan does not say offline:\n%s", r.stdout)
		}
		u.waitSteady(t, "7.8.0-1")
		u.checkOutput(t, r.stdout, 16, "7.7.5-1", "7.8.0-1")
		u.checkSyncFlows(t)
		// Serving again through both balancers.
		after, err := testenv.StartTraffic([]string{u.Frontend, u.NginxFrontend}, 1)
		if err != nil {
			t.Fatal(err)
		}
		poll(t, "traffic after the offline upgrade", 15*time.Second, func() error {
			if ok, failed := after.Counts(); ok+failed < 20 {
				return fmt.Errorf("%d connections so far", ok+failed)
			}
			return nil
		})
		if ok, failed := after.Stop(); failed != 0 || ok == 0 {
			t.Errorf("traffic after the offline upgrade: %d ok, %d failed: %v", ok, failed, after.Errors())
		}
	})
}

// runAndSignal runs lbadapter with args and sends it sig at the first line of its stdout for
// which at holds; it returns the whole stdout and stderr, whether sig was sent, and how the
// process ended.
func (u *upgradeCluster) runAndSignal(t *testing.T, args []string, at func(line string) bool, sig os.Signal) (stdout, stderr string, sent bool, ps *os.ProcessState) {
	t.Helper()
	cmd := exec.Command(u.adapter, args...)
	var errb bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if !sent && at(sc.Text()) {
			_ = cmd.Process.Signal(sig)
			sent = true
		}
	}
	_ = cmd.Wait()
	return out.String(), errb.String(), sent, cmd.ProcessState
}

// snapshot is what a dry run must not change: HAProxy's view, nginx's servers file, every
// agent's version, maintenance, replication pause and sync pause.
func (u *upgradeCluster) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, n := range u.Nodes {
		st, _, err := u.ServerStatus(context.Background(), n.Name)
		s, serr := u.status(n)
		fmt.Fprintf(&b, "%s haproxy=%s %v agent=%s maint=%v err=%v", n.Name, st, err, s.State, s.Maintenance, serr)
		if v := s.Components.Version; v != nil {
			fmt.Fprintf(&b, " version=%s", v.XRoad)
		}
		if r := s.Components.Replication; r != nil {
			fmt.Fprintf(&b, " replay-paused=%v", r.Paused)
		}
		if y := s.Components.Sync; y != nil {
			fmt.Fprintf(&b, " sync-paused=%v", y.Paused)
		}
		_, perr := os.Stat(filepath.Join(u.nodeDir(n), "sync-disabled"))
		fmt.Fprintf(&b, " pause-file=%v; ", !os.IsNotExist(perr))
	}
	servers, err := os.ReadFile(u.ServersFile)
	fmt.Fprintf(&b, "nginx servers %q %v", servers, err)
	return b.String()
}

// checkOutput: one line per step with its duration, streamed output with the node prefix,
// the final table with every node from → to, drain time, downtime.
func (u *upgradeCluster) checkOutput(t *testing.T, out string, total int, from, to string) {
	t.Helper()
	steps := regexp.MustCompile(fmt.Sprintf(`(?m)^\[ ?\d+/%d\] (ss\d) +(\S+) +done in [0-9.]+(ms|s)`, total)).FindAllStringSubmatch(out, -1)
	if len(steps) == 0 {
		t.Errorf("no step lines:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^ss3 \| Unpacking xroad-proxy \(` + regexp.QuoteMeta(to) + `\)`).MatchString(out) {
		t.Errorf("the command's output is not streamed with the node prefix:\n%s", out)
	}
	if !regexp.MustCompile(`(?s)\nss1 .*\nss2 .*\nss3 `).MatchString(out) {
		t.Errorf("table rows not in upgrade order ss1, ss2, ss3:\n%s", out)
	}
	for _, n := range []string{"ss1", "ss2", "ss3"} {
		row := regexp.MustCompile(`(?m)^` + n + ` +` + regexp.QuoteMeta(from+" -> "+to) + ` +([0-9.]+m?s) +([0-9.]+m?s|\dm\d\ds) +upgraded$`)
		if !row.MatchString(out) {
			t.Errorf("table has no row %s %s -> %s with drain and downtime:\n%s", n, from, to, out)
		}
	}
	if !strings.Contains(out, "upgrade complete: 3 nodes in ") {
		t.Errorf("no completion line:\n%s", out)
	}
}

// checkSyncFlows: a change on the primary's side reaches every secondary again.
func (u *upgradeCluster) checkSyncFlows(t *testing.T) {
	t.Helper()
	stamp := time.Now().Format(time.RFC3339Nano)
	writeTree(t, u.SyncSource, map[string]string{"signer/after-upgrade": stamp + "\n"})
	for name, target := range u.SyncTarget {
		poll(t, "sync to "+name, 15*time.Second, func() error {
			b, err := os.ReadFile(filepath.Join(target, "signer/after-upgrade"))
			if err != nil || string(b) != stamp+"\n" {
				return fmt.Errorf("%s: %q %v", name, b, err)
			}
			return nil
		})
	}
}
