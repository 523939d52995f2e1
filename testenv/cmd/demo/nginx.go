package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/nginx"
	"github.com/xroad-lb/lbkit/testenv"
)

// nginxTour shows the same nodes in a stream upstream of a real nginx (worker_processes 2)
// whose servers file lbadapter keeps: status with HAProxy and nginx, a drain on both that
// waits for a connection held through nginx across its graceful reload, enable, and
// lbadapter watch taking a node in maintenance out of the upstream and back.
func nginxTour(ctx context.Context, c *testenv.Cluster, lbadapter string) error {
	config, err := withoutSection(c.ConfigPath, `[balancer "nlb"]`, "haproxy-nginx.ini")
	if err != nil {
		return err
	}
	step("The same nodes behind nginx: a stream {} upstream that includes a servers file lbadapter keeps")
	fmt.Printf("   nginx stream server %s, servers file %s, nginx -t -c %s\n", c.NginxFrontend, c.ServersFile, c.Nginx.Conf)
	printFile(c.ServersFile)
	adapter := lbadapterRunner(ctx, lbadapter, config, nil)
	_ = adapter("status")

	conn, err := net.Dial("tcp", c.NginxFrontend)
	if err != nil {
		return err
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
		return fmt.Errorf("the connection through nginx reached no node")
	}
	fmt.Printf("   # a connection through nginx, held open, landed on %s; drain %s on HAProxy and nginx at once:\n", held.Name, held.Name)
	fmt.Println("   # nginx -t, SIGHUP: new workers send nothing to it, the old worker keeps the connection")
	go func() {
		time.Sleep(3 * time.Second)
		fmt.Println("   # (the client finishes its exchange and closes the connection)")
		conn.Close()
	}()
	if err := adapter("drain", held.Name, "--timeout", "60s"); err != nil {
		return fmt.Errorf("lbadapter drain: %w", err)
	}
	printFile(c.ServersFile)
	if err := adapter("enable", held.Name); err != nil {
		return fmt.Errorf("lbadapter enable: %w", err)
	}

	// HAProxy polls the agents from 127.0.0.1 too; on its own address the watcher hears its
	// own "ready" after maintenance (on real hosts nginx and HAProxy have their own).
	fmt.Printf("$ lbadapter --config %s watch --interval 1s --fall 2 --rise 2 --source 127.0.0.250 &   # active checks for nginx\n", config)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := exec.CommandContext(wctx, lbadapter, "--config", config, "watch", "--interval", "1s", "--fall", "2", "--rise", "2", "--source", "127.0.0.250")
	out := &indent{}
	watch.Stdout, watch.Stderr = out, out
	watch.Cancel = func() error { return watch.Process.Signal(syscall.SIGTERM) }
	if err := watch.Start(); err != nil {
		return err
	}
	defer func() { cancel(); _ = watch.Wait(); out.flush() }()

	ss3 := c.Node("ss3")
	fmt.Printf("$ curl -s \"http://%s/maintenance?targetState=true\"   # on ss3: its /lb line says drain\n", ss3.AdminAddr)
	if err := maintenance(ctx, ss3, true); err != nil {
		return err
	}
	if err := waitLine(ctx, c, ss3, func(s *nginx.Server) bool { return s.Agent }); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let the watcher's reload line print
	printFile(c.ServersFile)
	_ = adapter("status")
	fmt.Printf("$ curl -s \"http://%s/maintenance?targetState=false\"\n", ss3.AdminAddr)
	if err := maintenance(ctx, ss3, false); err != nil {
		return err
	}
	if err := waitLine(ctx, c, ss3, func(s *nginx.Server) bool { return !s.Down() }); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	_ = adapter("status")
	return nil
}

// waitLine polls the servers file until the node's line satisfies ok (30 s at most).
func waitLine(ctx context.Context, c *testenv.Cluster, n *testenv.ClusterNode, ok func(*nginx.Server) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if f, _, err := nginx.ReadFile(c.ServersFile); err == nil {
			if s := f.Find(n.IP, c.MsgPort); s != nil && ok(s) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s's line in %s did not change: %w", n.Name, c.ServersFile, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// printFile shows a file indented.
func printFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	fmt.Printf("$ cat %s\n", path)
	out := &indent{}
	_, _ = out.Write(b)
	out.flush()
}
