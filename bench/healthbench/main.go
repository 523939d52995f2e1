// Command healthbench measures lbagent's health port against nginx `return 200` in the same
// run (wrk, keep-alive and Connection: close), and shows that the serverconf database sees
// the same query rate whatever the probe rate. It prints a Markdown section for BENCHMARKS.md.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/bench/internal/measure"
	"github.com/xroad-lb/lbkit/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "healthbench:", err)
		os.Exit(1)
	}
}

const (
	duration = "5s"
	conns    = "64"
	rounds   = 2
)

func run() error {
	ctx := context.Background()
	wrk, err := testenv.Find("wrk")
	if err != nil {
		return err
	}
	bin, _ := filepath.Abs("bin/lbagent")
	root, err := os.MkdirTemp("", "healthbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	// Every statement is logged with its user, so the serverconf queries can be counted.
	db, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{Conf: []string{
		"log_min_duration_statement = 0", "log_line_prefix = '%u '"}})
	if err != nil {
		return err
	}
	defer db.Close()
	// wrk runs from 127.0.0.1: listed as the balancer, it is not rate-limited per address.
	node, err := testenv.WriteNode(root, testenv.NodeOptions{Role: "master", DB: db, LBAgentINI: "[agent-check]\nbalancers = 127.0.0.1\n"})
	if err != nil {
		return err
	}
	adminPort, _ := testenv.FreePort("127.0.0.1")
	agent := exec.Command(bin, "run", "--xroad-dir", node.XRoadDir, "--ocsp-cache-dir", node.OCSPDir,
		"--admin-listen", "127.0.0.1:"+strconv.Itoa(adminPort), "--log-level", "warn")
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { _ = agent.Process.Signal(syscall.SIGTERM); _ = agent.Wait() }()
	health := "http://" + node.HealthAddr + "/"
	if err := waitOK(health); err != nil {
		return err
	}
	nport, _ := testenv.FreePort("127.0.0.1")
	naddr := "127.0.0.1:" + strconv.Itoa(nport)
	ng, err := testenv.StartNginx(ctx, testenv.NginxOptions{WaitFor: naddr,
		HTTP: fmt.Sprintf("server { listen %s; location / { return 200; } }", naddr)})
	if err != nil {
		return err
	}
	defer ng.Close()
	anchor := "http://" + naddr + "/"

	type row struct{ mode, target string }
	results := map[row][]float64{}
	modes := []struct {
		name string
		args []string
	}{
		{"keep-alive", nil},
		{"Connection: close", []string{"-H", "Connection: close"}},
	}
	for r := 0; r < rounds; r++ {
		for _, m := range modes {
			for _, tg := range []struct{ name, url string }{{"nginx return 200", anchor}, {"lbagent health port", health}} {
				args := append([]string{"-t1", "-c" + conns, "-d" + duration}, m.args...)
				rps, _, err := measure.WrkRPS(wrk, append(args, tg.url))
				if err != nil {
					return err
				}
				k := row{m.name, tg.name}
				results[k] = append(results[k], rps)
			}
		}
	}

	fmt.Println("## Health port: lbagent vs nginx `return 200` (issue 2)")
	fmt.Println()
	fmt.Printf("Command per cell: `wrk -t1 -c%s -d%s [-H 'Connection: close'] URL`, %d rounds interleaved, median shown.\n", conns, duration, rounds)
	fmt.Println("Both servers on 127.0.0.1 on the same 2-core machine as wrk; nginx `worker_processes auto`, `access_log off`;")
	fmt.Println("lbagent serving a healthy node (real PostgreSQL serverconf, generated X-Road files). Started by `make bench` (bench/10-health.sh).")
	fmt.Println()
	fmt.Println("| mode | nginx return 200 (req/s) | lbagent (req/s) | ratio | goal |")
	fmt.Println("|---|---:|---:|---:|---|")
	for _, m := range modes {
		n := measure.Median(results[row{m.name, "nginx return 200"}])
		l := measure.Median(results[row{m.name, "lbagent health port"}])
		goal := "≥ 1.00×"
		if m.name != "keep-alive" {
			goal = "≥ 0.95×"
		}
		fmt.Printf("| %s | %.0f | %.0f | %.2f× | %s |\n", m.name, n, l, l/n, goal)
	}
	fmt.Println()

	// Serverconf query rate at two probe rates.
	lowRate, lowDB, err := measureDB(ctx, db, func(d time.Duration) float64 { return paced(health, 100, d) })
	if err != nil {
		return err
	}
	highRate, highDB, err := measureDB(ctx, db, func(d time.Duration) float64 {
		rps, _, _ := measure.WrkRPS(wrk, []string{"-t1", "-c" + conns, "-d" + strconv.Itoa(int(d.Seconds())) + "s", health})
		return rps
	})
	if err != nil {
		return err
	}
	fmt.Println("Serverconf database load while the probe rate changes (statements executed by the `serverconf`")
	fmt.Println("user, counted in PostgreSQL's own statement log, `log_min_duration_statement = 0`, over 12 s windows):")
	fmt.Println()
	fmt.Println("| probe load | probes/s | serverconf queries/s |")
	fmt.Println("|---|---:|---:|")
	fmt.Printf("| paced Go client, 100/s | %.0f | %.2f |\n", lowRate, lowDB)
	fmt.Printf("| wrk, as fast as possible | %.0f | %.2f |\n", highRate, highDB)
	fmt.Println()
	fmt.Printf("The probe rate grew %.0f×; the database load stayed at one `SELECT 1` per success TTL (2 s), because a probe only reads the latest verdict.\n", highRate/lowRate)
	return nil
}

func waitOK(url string) error {
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s never answered 200", url)
}

// paced sends perSecond requests per second for d and returns the achieved rate.
func paced(url string, perSecond int, d time.Duration) float64 {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	end := time.Now().Add(d)
	var n int
	var mu sync.Mutex
	for time.Now().Before(end) {
		<-tick.C
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			mu.Lock()
			n++
			mu.Unlock()
		}
	}
	return float64(n) / d.Seconds()
}

// measureDB runs load for 12 s and counts the serverconf user's executed statements in the
// server's log over that window.
func measureDB(_ context.Context, db *testenv.Postgres, load func(time.Duration) float64) (probes, perSec float64, err error) {
	logPath := filepath.Join(db.Dir, "postgres.log")
	count := func() (int, error) {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return 0, err
		}
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "serverconf ") && strings.Contains(l, "execute") && strings.Contains(l, "SELECT 1") {
				n++
			}
		}
		return n, nil
	}
	before, err := count()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	probes = load(12 * time.Second)
	after, err := count()
	if err != nil {
		return 0, 0, err
	}
	return probes, float64(after-before) / time.Since(start).Seconds(), nil
}
