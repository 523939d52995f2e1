// Command nginxbench measures, on a loopback 3-node cluster with real lbagents, requests per
// second through nginx with lbkit's Lua balancer next to nginx's plain round robin (same nginx,
// same backends, interleaved rounds), and the time from an agent saying "down" to nginx
// routing no new traffic to the node, with the Lua module (http) and with lbadapter watch
// (stream). It prints one Markdown section; bench/33-nginx.sh runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/bench/internal/measure"
	"github.com/xroad-lb/lbkit/nginx"
	"github.com/xroad-lb/lbkit/testenv"
)

func main() { os.Exit(run()) }

const (
	interval = time.Second // the Lua module's and the watcher's
	fall     = 2
)

func run() int {
	lbagent := flag.String("lbagent", "bin/lbagent", "lbagent binary")
	lbadapter := flag.String("lbadapter", "bin/lbadapter", "lbadapter binary")
	rounds := flag.Int("rounds", 3, "wrk rounds per upstream, interleaved")
	duration := flag.Duration("d", 5*time.Second, "wrk duration per round")
	downs := flag.Int("downs", 3, "down measurements per mechanism")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	if err := bench(ctx, *lbagent, *lbadapter, *rounds, *duration, *downs); err != nil {
		fmt.Fprintln(os.Stderr, "nginxbench:", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, lbagent, lbadapter string, rounds int, d time.Duration, downs int) error {
	wrk, err := testenv.Find("wrk")
	if err != nil {
		return err
	}
	if lbagent, err = filepath.Abs(lbagent); err != nil {
		return err
	}
	c, err := testenv.StartCluster(ctx, testenv.ClusterOptions{LBAgent: lbagent, Nginx: true, NoAgentCheck: true})
	if err != nil {
		return err
	}
	defer c.Close()
	ss2 := c.Node("ss2")
	probe, err := newProbe(ss2)
	if err != nil {
		return err
	}
	defer probe.close()

	// http: backends (nginx return 200 with the node's name), a plain round-robin upstream
	// and the Lua one, in one nginx with 2 workers.
	backend, err := testenv.FreePortOn("127.0.0.2", "127.0.0.3", "127.0.0.4")
	if err != nil {
		return err
	}
	plainPort, _ := testenv.FreePort("127.0.0.1")
	luaPort, _ := testenv.FreePort("127.0.0.1")
	plain, lua := fmt.Sprintf("127.0.0.1:%d", plainPort), fmt.Sprintf("127.0.0.1:%d", luaPort)
	luaDir, err := filepath.Abs("nginx/lua")
	if err != nil {
		return err
	}
	var peers, servers, backends []string
	for _, n := range c.Nodes {
		peers = append(peers, fmt.Sprintf(`{ name = %q, host = %q, port = %d, agent = "%s:%d" }`, n.Name, n.IP, backend, n.IP, n.HealthPort))
		servers = append(servers, fmt.Sprintf("server %s:%d;", n.IP, backend))
		backends = append(backends, fmt.Sprintf("server { listen %s:%d; location / { return 200 \"%s\\n\"; } }", n.IP, backend, n.Name))
	}
	ng, err := testenv.StartNginx(ctx, testenv.NginxOptions{Workers: "2", Lua: true, WaitFor: lua, HTTP: fmt.Sprintf(`
    lua_package_path "%[1]s/?.lua;;";
    lua_shared_dict lbkit 1m;
    lua_socket_log_errors off;
    init_worker_by_lua_block {
      require("lbkit").watch{ upstream = "xroad_http", interval = %[2]d, fall = %[3]d, rise = 2, peers = { %[4]s } }
    }
    upstream xroad_http { server 127.0.0.1:1; balancer_by_lua_block { require("lbkit").balance("xroad_http") } }
    upstream plain_rr { %[5]s }
    server { listen %[6]s; location / { proxy_pass http://plain_rr; } }
    server { listen %[7]s; location / { proxy_pass http://xroad_http; } location = /lbkit { content_by_lua_block { require("lbkit").status() } } }
    %[8]s`, luaDir, int(interval.Seconds()), fall, strings.Join(peers, ", "), strings.Join(servers, " "), plain, lua, strings.Join(backends, "\n    "))})
	if err != nil {
		return err
	}
	defer ng.Close()
	for _, u := range []string{plain, lua} {
		if err := waitHTTP(ctx, "http://"+u+"/"); err != nil {
			return err
		}
	}

	args := []string{"-t1", "-c64", "-d" + d.String()}
	var rrRPS, luaRPS []float64
	for range rounds {
		for _, x := range []struct {
			url string
			out *[]float64
		}{{"http://" + plain + "/", &rrRPS}, {"http://" + lua + "/", &luaRPS}} {
			r, non2xx, err := measure.WrkRPS(wrk, append(args, x.url))
			if err != nil {
				return err
			}
			if non2xx {
				return fmt.Errorf("wrk %s: answers other than 2xx", x.url)
			}
			*x.out = append(*x.out, r)
		}
	}

	// Lua: time from the agent's first "down" to the last request nginx sent to ss2.
	var luaDown []time.Duration
	for range downs {
		took, err := probe.measure(ctx, func() (bool, error) { return httpHitsSS2(lua) }, func() error {
			return waitHTTPBody(ctx, "http://"+lua+"/lbkit", "xroad_http ss2 ", " UP ")
		})
		if err != nil {
			return fmt.Errorf("lua: %w", err)
		}
		luaDown = append(luaDown, took)
	}

	// lbadapter watch: the same, through the stream upstream.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := exec.CommandContext(wctx, lbadapter, "--config", c.ConfigPath, "watch", "--interval", interval.String(),
		"--fall", strconv.Itoa(fall), "--rise", "2", "--source", "127.0.0.250")
	watch.Cancel = func() error { return watch.Process.Signal(syscall.SIGTERM) }
	if err := watch.Start(); err != nil {
		return err
	}
	defer func() { cancel(); _ = watch.Wait() }()
	var watchDown []time.Duration
	for range downs {
		took, err := probe.measure(ctx, func() (bool, error) { return streamHitsSS2(c) }, func() error {
			return waitLine(ctx, c, ss2, func(s *nginx.Server) bool { return !s.Down() })
		})
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		watchDown = append(watchDown, took)
	}

	ver, _ := exec.Command("nginx", "-v").CombinedOutput()
	goal := time.Duration(fall)*interval + 100*time.Millisecond
	fmt.Println("## nginx: Lua balancer throughput and time to take a node out (bench/33-nginx.sh)")
	fmt.Println()
	fmt.Printf("%s, `worker_processes 2`, Debian's libnginx-mod-http-lua; 3 nodes on 127.0.0.2-4 with real lbagents; backends are\n", strings.TrimSpace(strings.TrimPrefix(string(ver), "nginx version: ")))
	fmt.Println("`return 200` server blocks of the same nginx on the nodes' addresses; wrk, nginx and the agents share 2 cores.")
	fmt.Println()
	fmt.Printf("Requests/s, `wrk %s URL`, %d rounds interleaved, median (all rounds):\n\n", strings.Join(args, " "), rounds)
	fmt.Println("| upstream | req/s | rounds | ratio | goal |")
	fmt.Println("|---|---:|---|---:|---|")
	fmt.Printf("| plain `upstream { server …; }` round robin (anchor) | %.0f | %s | 1.00× | |\n", measure.Median(rrRPS), list(rrRPS))
	fmt.Printf("| lbkit Lua `balancer_by_lua` (`lbkit.balance`) | %.0f | %s | %.2f× | ≥ 0.90× |\n", measure.Median(luaRPS), list(luaRPS), measure.Median(luaRPS)/measure.Median(rrRPS))
	fmt.Println()
	fmt.Printf("Time from lbagent's `/lb` first saying `down` (its TCP liveness check of a listener the bench closes; polled every\n")
	fmt.Printf("20 ms) to the last new request/connection nginx sent to that node (sent back to back), interval %s, fall %d,\n", interval, fall)
	fmt.Printf("%d measurements each; goal ≤ fall × interval + 100 ms = %s:\n\n", downs, goal)
	fmt.Println("| mechanism | median | max | all |")
	fmt.Println("|---|---:|---:|---|")
	fmt.Printf("| Lua module (http upstream, in nginx) | %s | %s | %s |\n", measure.Ms(measure.Median(luaDown), 0), measure.Ms(slices.Max(luaDown), 0), listD(luaDown))
	fmt.Printf("| `lbadapter watch` (stream upstream: servers file, `nginx -t`, reload) | %s | %s | %s |\n", measure.Ms(measure.Median(watchDown), 0), measure.Ms(slices.Max(watchDown), 0), listD(watchDown))
	fmt.Println()
	fmt.Println("A poll lands somewhere in the interval after the agent's change, then fall polls are needed, so the expected")
	fmt.Println("time is between (fall − 1) × interval and fall × interval, plus for the watcher `nginx -t` and the reload.")
	return nil
}

// probe is a listener that ss2's lbagent checks (tcp-checks): closing it makes the agent say
// "down", reopening it "up".
type probe struct {
	node *testenv.ClusterNode
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

func newProbe(n *testenv.ClusterNode) (*probe, error) {
	p := &probe{node: n}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.ln, p.addr = ln, ln.Addr().String()
	go accept(ln)
	nodeINI := filepath.Join(n.XRoad.XRoadDir, "conf.d", "node.ini")
	f, err := os.OpenFile(nodeINI, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(f, "\n[lbagent]\ntcp-checks = probe=%s\n", p.addr)
	f.Close()
	if err != nil {
		return nil, err
	}
	if err := n.StopAgent(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.StartAgent(ctx); err != nil {
		return nil, err
	}
	return p, p.waitLB(ctx, "up")
}

func accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func (p *probe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

func (p *probe) open() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.ln = ln
	go accept(ln)
	return nil
}

// lb reads the node's /lb line.
func (p *probe) lb() (string, error) {
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/lb", p.node.IP, p.node.HealthPort))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// waitLB polls /lb every 20 ms until it starts with word and returns when it first did.
func (p *probe) waitLB(ctx context.Context, word string) error {
	for {
		if l, err := p.lb(); err == nil && strings.HasPrefix(l, word) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s's /lb never said %s: %w", p.node.Name, word, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// measure closes the probe, sends traffic back to back with hit (true when it reached ss2),
// and returns the time from /lb's first "down" to the last hit; then it reopens the probe and
// waits with back until the node takes traffic again.
func (p *probe) measure(ctx context.Context, hit func() (bool, error), back func() error) (time.Duration, error) {
	var (
		mu      sync.Mutex
		lastHit time.Time
		stop    = make(chan struct{})
		done    = make(chan error, 1)
	)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			ok, err := hit()
			if err != nil {
				done <- err
				return
			}
			if ok {
				mu.Lock()
				lastHit = time.Now()
				mu.Unlock()
			}
		}
	}()
	p.close()
	if err := p.waitLB(ctx, "down"); err != nil {
		close(stop)
		<-done
		return 0, err
	}
	down := time.Now()
	select { // well past the goal: the last hit is behind us
	case <-time.After(time.Duration(fall)*interval + 1500*time.Millisecond):
	case <-ctx.Done():
	}
	close(stop)
	if err := <-done; err != nil {
		return 0, err
	}
	if err := p.open(); err != nil {
		return 0, err
	}
	if err := p.waitLB(ctx, "up"); err != nil {
		return 0, err
	}
	if err := back(); err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	if lastHit.Before(down) {
		return 0, nil
	}
	if lastHit.Sub(down) > time.Duration(fall)*interval+time.Second {
		return 0, errors.New("ss2 still got traffic at the end of the measurement")
	}
	return lastHit.Sub(down), nil
}

var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}

func httpHitsSS2(addr string) (bool, error) {
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)) == "ss2", err
}

func streamHitsSS2(c *testenv.Cluster) (bool, error) {
	ss2 := c.Node("ss2")
	before := ss2.Msg.Accepted()
	conn, err := net.DialTimeout("tcp", c.NginxFrontend, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("x\n")); err != nil {
		return false, err
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		return false, err
	}
	return ss2.Msg.Accepted() > before, nil
}

func waitLine(ctx context.Context, c *testenv.Cluster, n *testenv.ClusterNode, ok func(*nginx.Server) bool) error {
	for {
		if f, _, err := nginx.ReadFile(c.ServersFile); err == nil {
			if s := f.Find(n.IP, c.MsgPort); s != nil && ok(s) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s's line never changed: %w", n.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitHTTP(ctx context.Context, url string) error {
	return waitHTTPBody(ctx, url, "")
}

// waitHTTPBody polls url until it answers 200 with a line containing all of parts.
func waitHTTPBody(ctx context.Context, url string, parts ...string) error {
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				for _, l := range strings.Split(string(b), "\n") {
					all := true
					for _, p := range parts {
						all = all && strings.Contains(l, p)
					}
					if all {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never showed %q: %w", url, parts, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func list(v []float64) string {
	p := make([]string, len(v))
	for i, x := range v {
		p[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(p, ", ")
}

func listD(d []time.Duration) string {
	p := make([]string, len(d))
	for i, x := range d {
		p[i] = fmt.Sprintf("%.0f", float64(x)/float64(time.Millisecond))
	}
	return strings.Join(p, ", ") + " ms"
}
