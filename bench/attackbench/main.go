// Command attackbench measures balancer probes (a new connection per probe, as HAProxy
// does) against lbagent's health and agent-check ports while each attack of
// testenv/attack runs, next to the idle baseline and to nginx `return 200` under the same
// attack, in the same run. It prints a Markdown section for BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/attack"
)

const balancer = "127.0.0.1"

var only string

func main() {
	probes := flag.Int("probes", 300, "probes per cell")
	interval := flag.Duration("interval", 10*time.Millisecond, "time between probes")
	flag.StringVar(&only, "only", "", "run only the attacks whose name contains this")
	flag.Parse()
	if err := run(*probes, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "attackbench:", err)
		os.Exit(1)
	}
}

// scenario is one attack, started against addr until ctx ends.
type scenario struct {
	name, what string
	start      func(ctx context.Context, addr string)
}

func loop(ctx context.Context, f func()) {
	for ctx.Err() == nil {
		f()
	}
}

var scenarios = []scenario{
	{"idle", "no attack", func(context.Context, string) {}},
	{"connection flood", "2,000 idle connections from 100 addresses, held", func(ctx context.Context, addr string) {
		h := attack.IdleFlood(ctx, addr, 2000, attack.Sources(10, 100))
		context.AfterFunc(ctx, h.Close)
	}},
	{"pipelining, 1 address", "200 connections from one address, 64 pipelined GETs per write", func(ctx context.Context, addr string) {
		go attack.Pipeline(ctx, addr, 200, attack.Sources(300, 1))
	}},
	{"pipelining, 20 addresses", "200 connections from 20 addresses, 64 pipelined GETs per write", func(ctx context.Context, addr string) {
		go attack.Pipeline(ctx, addr, 200, attack.Sources(320, 20))
	}},
	{"4 MB bodies", "POSTs of 4 MB, 10 at a time", func(ctx context.Context, addr string) {
		go loop(ctx, func() { attack.Bodies(ctx, addr, 10, 4<<20, 10, attack.Sources(400, 10)) })
	}},
	{"malformed requests", "garbage requests, 32 connections at a time", func(ctx context.Context, addr string) {
		go loop(ctx, func() { attack.Malformed(ctx, addr, 500, 32, attack.Sources(420, 20)) })
	}},
}

type target struct {
	name  string
	addr  string
	probe func(ctx context.Context) attack.Probe
}

func run(n int, interval time.Duration) error {
	ctx := context.Background()
	startLoad := loadavg()
	bin, _ := filepath.Abs("bin/lbagent")
	root, err := os.MkdirTemp("", "attackbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	db, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	acPort, _ := testenv.FreePort("127.0.0.1")
	agentAddr := "127.0.0.1:" + strconv.Itoa(acPort)
	node, err := testenv.WriteNode(root, testenv.NodeOptions{Role: "master", DB: db,
		LBAgentINI: fmt.Sprintf("[agent-check]\nlisten = %s\nbalancers = %s\n", agentAddr, balancer)})
	if err != nil {
		return err
	}
	adminPort, _ := testenv.FreePort("127.0.0.1")
	agent := exec.Command(bin, "run", "--xroad-dir", node.XRoadDir, "--ocsp-cache-dir", node.OCSPDir,
		"--admin-listen", "127.0.0.1:"+strconv.Itoa(adminPort), "--log-level", "error")
	agent.Env = append(os.Environ(), "GOMAXPROCS=") // [lbagent] max-procs = 1, the default
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { _ = agent.Process.Signal(syscall.SIGTERM); _ = agent.Wait() }()
	nport, _ := testenv.FreePort("127.0.0.1")
	naddr := "127.0.0.1:" + strconv.Itoa(nport)
	sport, _ := testenv.FreePort("127.0.0.1")
	saddr := "127.0.0.1:" + strconv.Itoa(sport)
	// The agent-check anchor: nginx's stream module answering "up" on every connection.
	ng, err := testenv.StartNginx(ctx, testenv.NginxOptions{WaitFor: naddr, Workers: "1",
		Main: fmt.Sprintf("load_module /usr/lib/nginx/modules/ngx_stream_module.so;\nstream { server { listen %s; return \"up\\n\"; } }", saddr),
		HTTP: fmt.Sprintf("access_log off; error_log /dev/null crit; server { listen %s; location / { return 200; } }", naddr)})
	if err != nil {
		return err
	}
	defer ng.Close()
	if err := waitHealthy(ctx, node.HealthAddr); err != nil {
		return err
	}
	targets := []target{
		{"nginx `return 200` (1 worker)", naddr, func(ctx context.Context) attack.Probe { return attack.HTTPProbe(ctx, balancer, naddr, "/") }},
		{"lbagent health port", node.HealthAddr, func(ctx context.Context) attack.Probe {
			return attack.HTTPProbe(ctx, balancer, node.HealthAddr, "/")
		}},
	}
	fmt.Println("## Probes under attack: lbagent vs nginx (issue 8)")
	fmt.Println()
	fmt.Printf("Each cell: %d probes, one every %s, each on a new connection from 127.0.0.1 (the balancer, listed in\n", n, interval)
	fmt.Println("`[agent-check] balancers`), while the attack runs from other loopback addresses against the same server.")
	fmt.Println("lbagent with `max-procs = 1` (default), nginx with `worker_processes 1`; attackers, probes and both servers")
	fmt.Println("share the 2-core machine. Command: `make bench` (bench/15-attack.sh → `go run ./bench/attackbench`).")
	fmt.Println()
	fmt.Println("| attack | target | p50 | p99 | max | failed probes |")
	fmt.Println("|---|---|---:|---:|---:|---:|")
	for _, sc := range scenarios {
		for _, tg := range targets {
			row(sc, tg.name, tg.addr, n, interval, tg.probe)
		}
	}
	agentProbe := func(ctx context.Context) attack.Probe {
		p := attack.AgentProbe(ctx, balancer, agentAddr)
		if p.Err == nil && p.Body != "up\n" {
			p.Err = fmt.Errorf("line %q", p.Body)
		}
		return p
	}
	streamProbe := func(ctx context.Context) attack.Probe {
		p := attack.AgentProbe(ctx, balancer, saddr)
		if p.Err == nil && p.Body != "up\n" {
			p.Err = fmt.Errorf("line %q", p.Body)
		}
		return p
	}
	for _, sc := range []scenario{
		{"agent-check idle", "", func(context.Context, string) {}},
		{"agent-check churn", "", func(ctx context.Context, addr string) {
			go attack.AgentChurn(ctx, addr, 4000, attack.Sources(500, 40))
		}},
		{"agent-check non-readers", "", func(ctx context.Context, addr string) {
			h := attack.NonReaders(ctx, addr, 2000, attack.Sources(600, 100))
			context.AfterFunc(ctx, h.Close)
		}},
	} {
		row(sc, "nginx stream `return \"up\\n\"` (1 worker)", saddr, n, interval, streamProbe)
		row(sc, "lbagent agent-check port", agentAddr, n, interval, agentProbe)
	}
	fmt.Println()
	fmt.Println("Attacks: " + describeScenarios() + ".")
	fmt.Println()
	fmt.Printf("Load average (1, 5, 15 min) at the start: %s; at the end: %s (2 cores: above 2, every number is inflated).\n", startLoad, loadavg())
	return nil
}

func describeScenarios() string {
	s := ""
	for i, sc := range scenarios[1:] {
		if i > 0 {
			s += "; "
		}
		s += sc.name + ": " + sc.what
	}
	return s + "; agent-check churn: 4,000 clients from 40 addresses connecting again and again, half of them reading the line; agent-check non-readers: 2,000 connections from 100 addresses that never read"
}

// row runs the scenario against addr and probes it; one table row.
func row(sc scenario, name, addr string, n int, interval time.Duration, probe func(context.Context) attack.Probe) {
	if !strings.Contains(sc.name, only) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, stop := context.WithCancel(ctx)
	sc.start(actx, addr)
	time.Sleep(time.Second) // let the attack build up
	ps := attack.Probes(ctx, n, interval, probe)
	stop()
	var wg sync.WaitGroup
	wg.Wait()
	failed := 0
	for _, p := range ps {
		if p.Err != nil || (p.Code != 0 && p.Code != 200) {
			failed++
		}
	}
	fmt.Printf("| %s | %s | %s | %s | %s | %d of %d |\n", sc.name, name, ms(attack.Percentile(ps, 50)),
		ms(attack.Percentile(ps, 99)), ms(attack.Percentile(ps, 100)), failed, len(ps))
	time.Sleep(2 * time.Second) // let the attack's connections go
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func waitHealthy(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if p := attack.HTTPProbe(ctx, balancer, addr, "/"); p.Code == 200 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("lbagent at %s not healthy", addr)
}
