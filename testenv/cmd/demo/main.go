// Command demo runs lbagent on a local X-Road-shaped node with a real PostgreSQL serverconf
// database (health check, maintenance mode, /status), then a 3-node cluster behind a real
// HAProxy (lbadapter status, drain, enable; maintenance seen through the agent-check port)
// and in a target group of a local ELBv2-compatible endpoint (drain, enable, maintenance seen
// by its health checks) and in an nginx stream upstream (drain across a graceful reload,
// lbadapter watch), then a rolling upgrade with lbadapter upgrade under client traffic on a
// cluster with real replication and config sync, and keeps them running until Ctrl-C (or
// DEMO_SECONDS elapsed).
// `make demo` runs it.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitStatus(ctx, demo(ctx), os.Stderr)
}

// exitStatus is the demo's exit status for err: 0 after Ctrl-C (or SIGTERM), whatever the
// interrupted step or the children that died of the same Ctrl-C returned, so that make does
// not report an error.
func exitStatus(ctx context.Context, err error, stderr io.Writer) int {
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "demo: interrupted, stopped")
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

// demoSeconds is DEMO_SECONDS when it is a positive number of seconds.
func demoSeconds(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// waitNote tells how the demo will end.
func waitNote(env string) string {
	if n, ok := demoSeconds(env); ok {
		return fmt.Sprintf("Stopping in %d s (DEMO_SECONDS); Ctrl-C stops sooner.", n)
	}
	return "Press Ctrl-C to stop."
}

func demo(ctx context.Context) error {
	bin, err := filepath.Abs("bin/lbagent")
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s missing: run `make build` first (make demo does)", bin)
	}
	root, err := os.MkdirTemp("", "lbkit-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)

	step("Starting PostgreSQL 15 (the serverconf database) as user postgres")
	db, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Printf("   listening on %s\n", db.Addr())

	healthPort := 5588
	if !free("127.0.0.1", healthPort) {
		healthPort = 0
	}
	step("Writing an X-Road node directory (primary) under " + root)
	node, err := testenv.WriteNode(root, testenv.NodeOptions{Role: "master", HealthPort: healthPort, DB: db,
		LBAgentINI: "[lbagent]\nfailure-ttl = 2s\n"})
	if err != nil {
		return err
	}
	fmt.Printf("   %s/conf.d/local.ini   [proxy] health-check-port\n   %s/db.properties      serverconf at %s\n",
		node.XRoadDir, node.XRoadDir, db.Addr())
	admin := "127.0.0.1:5566"
	if !free("127.0.0.1", 5566) {
		p, _ := testenv.FreePort("127.0.0.1")
		admin = "127.0.0.1:" + strconv.Itoa(p)
	}

	step("Starting lbagent")
	args := []string{"run", "--xroad-dir", node.XRoadDir, "--ocsp-cache-dir", node.OCSPDir,
		"--admin-listen", admin, "--log-format", "console"}
	fmt.Printf("   %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	health := "http://" + node.HealthAddr
	if err := waitFor(ctx, health+"/", 200); err != nil {
		return err
	}

	step("A tour (each line is a command you can run yourself)")
	show("curl -si " + health + "/")
	show("curl -s \"http://" + admin + "/maintenance?targetState=true\"")
	show("curl -si " + health + "/")
	show("curl -s \"http://" + admin + "/maintenance?targetState=false\"")
	fmt.Println("   # expire the global configuration (as if the node stopped downloading it):")
	if err := node.Break(testenv.FaultGlobalConfExpired); err != nil {
		return err
	}
	time.Sleep(2500 * time.Millisecond)
	show("curl -si " + health + "/")
	if err := node.Fix(testenv.FaultGlobalConfExpired); err != nil {
		return err
	}
	fmt.Println("   # fixed again; the failure is kept for failure-ttl (2 s here, 30 s by default)")
	time.Sleep(2500 * time.Millisecond)
	show("curl -si " + health + "/")

	cluster, err := clusterTour(ctx, bin, filepath.Join(filepath.Dir(bin), "lbadapter"))
	if cluster != nil {
		defer cluster.Close()
	}
	if err != nil {
		return err
	}
	if err := upgradeTour(ctx, bin, filepath.Join(filepath.Dir(bin), "lbadapter")); err != nil {
		return err
	}

	step("Try it yourself while the demo runs")
	fmt.Printf(`   curl -si %[1]s/                  # X-Road health check: 200 / 500 <message> / 503
   curl -s  %[1]s/status            # every check as application/health+json (no causes, paths or peers)
   curl -s  http://%[2]s/status      # the full status, on the loopback admin port
   curl -s  %[1]s/metrics           # Prometheus metrics
   curl -s "http://%[2]s/maintenance?targetState=true"    # maintenance on (503)
   curl -s "http://%[2]s/maintenance?targetState=false"   # maintenance off
   %[3]s maintenance on --admin %[2]s
   kill -STOP the PostgreSQL processes to see "Fetching health check response timed out for: Server conf database status"
   export %[6]s
   %[4]s --config %[5]s status          # HAProxy and the ELBv2 target group
   %[4]s --config %[5]s drain ss3        # then: enable ss3
%[7]s
`, health, admin, bin, filepath.Join(filepath.Dir(bin), "lbadapter"), cluster.ConfigPath, strings.Join(cluster.AWSEnv(), " "),
		waitNote(os.Getenv("DEMO_SECONDS")))
	var timeout <-chan time.Time
	if n, ok := demoSeconds(os.Getenv("DEMO_SECONDS")); ok {
		timeout = time.After(time.Duration(n) * time.Second)
	}
	select {
	case <-ctx.Done():
	case <-timeout:
	case err := <-exited:
		return fmt.Errorf("lbagent exited: %v", err)
	}
	step("Stopping lbagent and PostgreSQL")
	return nil
}

func step(s string) { fmt.Printf("\n== %s\n", s) }

// maintenance switches a node's maintenance mode and prints the agent's answer under the
// curl line the demo printed, as curl would.
func maintenance(ctx context.Context, n *testenv.ClusterNode, on bool) error {
	answer, err := n.Maintenance(ctx, on)
	if err != nil {
		return err
	}
	out := &indent{}
	_, _ = io.WriteString(out, answer)
	out.flush()
	return nil
}

// show runs a shell command line and prints it with its output.
func show(line string) {
	fmt.Printf("$ %s\n", line)
	out, _ := exec.Command("sh", "-c", line).CombinedOutput()
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.HasPrefix(l, "Date:") || strings.HasPrefix(l, "Content-Length") {
			continue
		}
		fmt.Printf("   %s\n", l)
	}
}

func free(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func waitFor(ctx context.Context, url string, code int) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == code {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %d", url, code)
}
