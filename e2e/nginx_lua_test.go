package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
)

// luaConfig is the http {} part of docs/nginx.md's Lua example with the cluster's addresses:
// the module from this repository, interval 0.2s, fall 2, rise 2.
func luaConfig(luaDir string, frontend string, peers []luaPeer) string {
	var ps, backends []string
	for _, p := range peers {
		ps = append(ps, fmt.Sprintf(`{ name = %q, host = %q, port = %d, agent = %q }`, p.name, p.ip, p.port, p.agent))
		backends = append(backends, fmt.Sprintf("server { listen %s:%d; location / { return 200 \"%s\\n\"; } }", p.ip, p.port, p.name))
	}
	return fmt.Sprintf(`
    lua_package_path "%[1]s/?.lua;%[1]s/?/init.lua;;";
    lua_shared_dict lbkit 1m;
    init_worker_by_lua_block {
      require("lbkit").watch{ upstream = "xroad_http", interval = 0.2, fall = 2, rise = 2,
        peers = { %[2]s } }
    }
    upstream xroad_http {
      server 127.0.0.1:1;
      balancer_by_lua_block { require("lbkit").balance("xroad_http") }
    }
    server {
      listen %[3]s;
      location / { proxy_pass http://xroad_http; }
      location = /lbkit { content_by_lua_block { require("lbkit").status() } }
    }
    %[4]s`, luaDir, strings.Join(ps, ",\n        "), frontend, strings.Join(backends, "\n    "))
}

type luaPeer struct {
	name, ip, agent string
	port            int
}

// TestNginxLua runs nginx (worker_processes 2) with the Lua module in front of a 3-node
// cluster's real lbagents and a fourth peer whose agent answers every kind of garbage.
func TestNginxLua(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, HAProxy, nginx and three lbagents")
	}
	testenv.Require(t, "nginx")
	if _, err := os.Stat(testenv.ModulePath("ngx_http_lua_module.so")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("libnginx-mod-http-lua: %v", err)
		}
		t.Skipf("libnginx-mod-http-lua: %v", err)
	}
	agentBin, err := testenv.BuildLBAgent(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.NewCluster(t, testenv.ClusterOptions{LBAgent: agentBin})
	backend, err := testenv.FreePortOn("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	var peers []luaPeer
	for _, n := range c.Nodes {
		peers = append(peers, luaPeer{n.Name, n.IP, net.JoinHostPort(n.IP, strconv.Itoa(n.HealthPort)), backend})
	}
	odd := startGarbageAgent(t, "127.0.0.5:0")
	peers = append(peers, luaPeer{"odd", "127.0.0.5", odd, backend})
	front, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	frontend := net.JoinHostPort("127.0.0.1", strconv.Itoa(front))
	luaDir, err := filepath.Abs("../nginx/lua")
	if err != nil {
		t.Fatal(err)
	}
	ng := testenv.NewNginx(t, testenv.NginxOptions{Workers: "2", Lua: true, WaitFor: frontend,
		HTTP: luaConfig(luaDir, frontend, peers)})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + frontend + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// spread sends n requests and counts the answers by node (or by status code).
	spread := func(n int) map[string]int {
		got := map[string]int{}
		for i := 0; i < n; i++ {
			code, body := get("/")
			if code != 200 {
				got[strconv.Itoa(code)]++
				continue
			}
			got[strings.TrimSpace(body)]++
		}
		return got
	}
	type peerStatus struct {
		Name, Address, State, Line string
	}
	statusOf := func(name string) peerStatus {
		t.Helper()
		code, body := get("/lbkit?format=json")
		var doc struct{ Peers []peerStatus }
		if err := json.Unmarshal([]byte(body), &doc); err != nil || code != 200 {
			t.Fatalf("status json: %d %v\n%s", code, err, body)
		}
		for _, p := range doc.Peers {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("status json has no peer %s:\n%s", name, body)
		return peerStatus{}
	}
	waitState := func(ctx context.Context, name, state string) time.Time {
		t.Helper()
		for {
			if p := statusOf(name); p.State == state {
				return time.Now()
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never %s: %+v\n%s", name, state, statusOf(name), ng.ErrorLog(20))
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	t.Run("garbage agent is DOWN, the others share the traffic", func(t *testing.T) {
		waitState(ctx, "odd", "DOWN")
		got := spread(30)
		if got["odd"] != 0 || got["ss1"] == 0 || got["ss2"] == 0 || got["ss3"] == 0 || len(got) != 3 {
			t.Errorf("30 requests went %v; want ss1, ss2, ss3 only", got)
		}
		_, text := get("/lbkit")
		if !strings.Contains(text, "xroad_http ss2 127.0.0.3:"+strconv.Itoa(backend)+" UP agent=\"up\" since ") ||
			!strings.Contains(text, "xroad_http odd 127.0.0.5:"+strconv.Itoa(backend)+" DOWN agent=") {
			t.Errorf("status page:\n%s", text)
		}
	})

	t.Run("maintenance stops new requests at once and comes back", func(t *testing.T) {
		n := c.Node("ss2")
		if err := n.SetMaintenance(ctx, true); err != nil {
			t.Fatal(err)
		}
		waitState(ctx, "ss2", "DRAIN")
		if p := statusOf("ss2"); p.Line != "drain" {
			t.Errorf("ss2's line %q; want drain", p.Line)
		}
		if got := spread(20); got["ss2"] != 0 {
			t.Errorf("requests reached ss2 in maintenance: %v", got)
		}
		if err := n.SetMaintenance(ctx, false); err != nil {
			t.Fatal(err)
		}
		waitState(ctx, "ss2", "UP")
	})

	t.Run("a stopped agent is out within fall x interval", func(t *testing.T) {
		n := c.Node("ss1")
		if err := n.StopAgent(); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		took := waitState(ctx, "ss1", "DOWN").Sub(stopped)
		t.Logf("agent stopped -> DOWN in nginx in %s (fall 2 x interval 200ms)", took)
		if limit := 2*200*time.Millisecond + 200*time.Millisecond + 500*time.Millisecond; took > limit {
			t.Errorf("DOWN after %s; want within fall x interval (+ one interval and 500ms): %s", took, limit)
		}
		if got := spread(12); got["ss1"] != 0 {
			t.Errorf("requests reached ss1 with its agent stopped: %v", got)
		}
		if err := n.StartAgent(ctx); err != nil {
			t.Fatal(err)
		}
		waitState(ctx, "ss1", "UP")
	})

	t.Run("up N% weights the peer", func(t *testing.T) {
		n := c.Node("ss3")
		nodeINI := filepath.Join(n.XRoad.XRoadDir, "conf.d", "node.ini")
		orig, err := os.ReadFile(nodeINI)
		if err != nil {
			t.Fatal(err)
		}
		restart := func(text []byte) {
			t.Helper()
			if err := os.WriteFile(nodeINI, text, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := n.StopAgent(); err != nil {
				t.Fatal(err)
			}
			if err := n.StartAgent(ctx); err != nil {
				t.Fatal(err)
			}
		}
		restart(append(append([]byte{}, orig...), "\n[agent-check]\nweight = 25\n"...))
		for statusOf("ss3").Line != "up 25%" {
			select {
			case <-ctx.Done():
				t.Fatalf("ss3 never said up 25%%: %+v", statusOf("ss3"))
			case <-time.After(20 * time.Millisecond):
			}
		}
		// The restart may have taken ss3 DOWN: the line changes at the first good poll, the
		// state only after rise of them.
		waitState(ctx, "ss3", "UP")
		_, text := get("/lbkit")
		if !strings.Contains(text, "xroad_http ss3 127.0.0.4:"+strconv.Itoa(backend)+" UP 25% agent=\"up 25%\"") {
			t.Errorf("status page:\n%s", text)
		}
		got := spread(45) // smooth weighted round robin per worker: 4, 4, 1 of every 9
		if got["ss3"] == 0 || got["ss3"]*2 >= got["ss1"] || got["ss3"]*2 >= got["ss2"] {
			t.Errorf("45 requests with ss3 at 25%%: %v", got)
		}
		restart(orig)
		waitState(ctx, "ss3", "UP")
		for statusOf("ss3").Line != "up" {
			select {
			case <-ctx.Done():
				t.Fatalf("ss3 never back at full weight: %+v", statusOf("ss3"))
			case <-time.After(20 * time.Millisecond):
			}
		}
	})

	t.Run("every peer out: 502", func(t *testing.T) {
		for _, name := range []string{"ss1", "ss2", "ss3"} {
			if err := c.Node(name).SetMaintenance(ctx, true); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"ss1", "ss2", "ss3"} {
			waitState(ctx, name, "DRAIN")
		}
		if got := spread(6); got["502"] != 6 {
			t.Errorf("with every peer out: %v; want 6 x 502", got)
		}
		for _, name := range []string{"ss1", "ss2", "ss3"} {
			if err := c.Node(name).SetMaintenance(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"ss1", "ss2", "ss3"} {
			waitState(ctx, name, "UP")
		}
	})

	t.Run("no Lua error in the log", func(t *testing.T) {
		log := ng.ErrorLog(10000)
		for _, l := range strings.Split(log, "\n") {
			// nginx's own lines about the agents' sockets and "no live upstreams" are fine;
			// anything from Lua code at error level or worse is not.
			lua := strings.Contains(l, "lua") && !strings.Contains(l, "lua tcp socket")
			if strings.Contains(l, "runtime error") || strings.Contains(l, "stack traceback") ||
				strings.Contains(l, "[crit]") || strings.Contains(l, "[alert]") || strings.Contains(l, "[emerg]") ||
				(strings.Contains(l, "[error]") && lua) {
				t.Errorf("error log: %s", l)
			}
		}
		if !strings.Contains(log, "lbkit: xroad_http peer odd") {
			t.Errorf("error log lacks lbkit's state changes:\n%s", log)
		}
	})
}

// startGarbageAgent answers /lb polls with every kind of broken answer in turn: words
// HAProxy would not take, nothing, no line end, a closed connection, no answer in time,
// HTTP 500, binary, a huge body.
func startGarbageAgent(t *testing.T, addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	answers := []string{
		"HTTP/1.0 200 OK\r\n\r\nup sideways\n",
		"HTTP/1.0 200 OK\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nup",
		"",
		"slow",
		"HTTP/1.0 500 Internal Server Error\r\n\r\nup\n",
		"\xff\xfe\x00\x01binary\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\n" + strings.Repeat("x", 100000) + "\n",
		"HTTP/1.0 200 OK\r\n\r\n%%%\n",
		"garbage without a status line\n",
	}
	var i atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(3 * time.Second))
				r := bufio.NewReader(c)
				for { // the request's head
					l, err := r.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				a := answers[int(i.Add(1)-1)%len(answers)]
				if a == "slow" {
					time.Sleep(time.Second)
					return
				}
				_, _ = io.WriteString(c, a)
			}()
		}
	}()
	return ln.Addr().String()
}
