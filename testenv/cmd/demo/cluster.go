package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/elbv2"
)

// clusterTour starts three lbagents on 127.0.0.2-4 behind a real HAProxy and shows
// lbadapter status, a drain that waits for a held connection, enable, and maintenance mode
// seen by HAProxy through the agent-check port. The nodes are also targets of a local ELBv2
// endpoint, which awsTour shows afterwards. It returns the cluster, still running.
func clusterTour(ctx context.Context, lbagent, lbadapter string) (*testenv.Cluster, error) {
	step("Starting a 3-node cluster: lbagent on 127.0.0.2-4, a stand-in message server on each, a real HAProxy in front")
	c, err := testenv.StartCluster(ctx, testenv.ClusterOptions{LBAgent: lbagent,
		Check: "inter 1s fall 3 rise 2", AgentInter: "1s",
		ELBv2: true, ELBv2Check: elbv2.HealthCheck{Interval: time.Second}, ELBv2DelaySeconds: 5, Nginx: true})
	if err != nil {
		return nil, err
	}
	// The HAProxy part uses a config with HAProxy alone, awsTour HAProxy and the target
	// group, nginxTour HAProxy and nginx.
	noNginx, err := withoutSection(c.ConfigPath, `[balancer "edge"]`, "haproxy-aws.ini")
	if err != nil {
		return c, err
	}
	haproxyOnly, err := withoutSection(noNginx, `[balancer "nlb"]`, "haproxy.ini")
	if err != nil {
		return c, err
	}
	fmt.Printf("   HAProxy frontend %s, runtime API %s, lbadapter config %s\n", c.Frontend, c.HAProxy.AdminSocket, haproxyOnly)
	adapter := lbadapterRunner(ctx, lbadapter, haproxyOnly, nil)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		if err := c.WaitServer(wctx, n.Name, func(s string) bool { return s == "UP" }); err != nil {
			return c, err
		}
	}
	_ = adapter("status")
	fmt.Println("   # LAG \"?\": the demo's secondaries share one database instead of replicas, so their")
	fmt.Println("   # replication watch has nothing to measure (see docs/replication.md for the real setup)")

	fmt.Println("   # a client connection through HAProxy, held open (as a long X-Road message exchange):")
	conn, err := net.Dial("tcp", c.Frontend)
	if err != nil {
		return c, err
	}
	_, _ = conn.Write([]byte("hello\n"))
	var held *testenv.ClusterNode
	for deadline := time.Now().Add(5 * time.Second); held == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, n := range c.Nodes {
			if n.Msg.Open() > 0 {
				held = n
			}
		}
	}
	if held == nil {
		conn.Close()
		return c, fmt.Errorf("the held connection reached no node")
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, sessions, err := c.ServerStatus(ctx, held.Name); err == nil && sessions > 0 {
			break // HAProxy counts it
		}
	}
	fmt.Printf("   # it landed on %s; drain %s: new connections go elsewhere, lbadapter waits for this one\n", held.Name, held.Name)
	go func() {
		time.Sleep(3 * time.Second)
		fmt.Println("   # (the client finishes its exchange and closes the connection)")
		conn.Close()
	}()
	if err := adapter("drain", held.Name, "--timeout", "60s"); err != nil {
		return c, fmt.Errorf("lbadapter drain: %w", err)
	}
	_ = adapter("status")
	if err := adapter("enable", held.Name); err != nil {
		return c, fmt.Errorf("lbadapter enable: %w", err)
	}

	ss2 := c.Node("ss2")
	fmt.Printf("$ curl -s \"http://%s/maintenance?targetState=true\"   # on ss2, as the guide does\n", ss2.AdminAddr)
	if err := maintenance(ctx, ss2, true); err != nil {
		return c, err
	}
	if err := c.WaitServer(wctx, "ss2", func(s string) bool { return strings.HasPrefix(s, "DRAIN") }); err != nil {
		return c, err
	}
	fmt.Println("   # ss2's agent-check answered \"drain\": HAProxy shows it draining, no HTTP check had to fail")
	_ = adapter("status")
	fmt.Printf("$ curl -s \"http://%s/maintenance?targetState=false\"\n", ss2.AdminAddr)
	if err := maintenance(ctx, ss2, false); err != nil {
		return c, err
	}
	if err := c.WaitServer(wctx, "ss2", func(s string) bool { return s == "UP" }); err != nil {
		return c, err
	}
	_ = adapter("status")
	if err := awsTour(ctx, c, noNginx, lbadapter); err != nil {
		return c, err
	}
	return c, nginxTour(ctx, c, lbadapter)
}

// lbadapterRunner returns a function that prints an lbadapter command line and runs it with
// its output indented below; env is added to the environment.
func lbadapterRunner(ctx context.Context, lbadapter, config string, env []string) func(args ...string) error {
	return func(args ...string) error {
		full := append([]string{"--config", config}, args...)
		fmt.Printf("$ lbadapter %s\n", strings.Join(full, " "))
		cmd := exec.CommandContext(ctx, lbadapter, full...)
		cmd.Env = append(os.Environ(), env...)
		out := &indent{}
		cmd.Stdout, cmd.Stderr = out, out
		err := cmd.Run()
		out.flush()
		return err
	}
}

// withoutSection writes a copy of the cluster config without the named section (up to the
// next blank line) and returns its path.
func withoutSection(path, section, name string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	text := string(b)
	i := strings.Index(text, section)
	if i < 0 {
		return "", fmt.Errorf("%s has no %s", path, section)
	}
	j := strings.Index(text[i:], "\n\n")
	if j < 0 {
		j = len(text) - i
	}
	out := filepath.Join(filepath.Dir(path), name)
	return out, os.WriteFile(out, []byte(text[:i]+text[i+j:]), 0o600)
}

// indent writes a command's output indented under it, a whole line at a time.
type indent struct {
	mu      sync.Mutex
	partial []byte
}

func (w *indent) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Fprintf(os.Stdout, "   %s\n", w.partial[:i])
		w.partial = w.partial[i+1:]
	}
}

func (w *indent) flush() {
	if len(w.partial) > 0 {
		_, _ = w.Write([]byte("\n"))
	}
}
