package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
)

// notifySocket is the systemd side of sd_notify: a datagram socket the daemon writes
// READY=1, RELOADING=1 to.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
	path string
}

func newNotifySocket(t *testing.T) *notifySocket {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{t: t, conn: conn, path: path}
}

// next returns the next message; exited ends the wait when the daemon is gone.
func (n *notifySocket) next(exited <-chan struct{}, log func() string) string {
	n.t.Helper()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		k, err := n.conn.Read(buf)
		if err != nil {
			got <- "read error: " + err.Error()
			return
		}
		got <- string(buf[:k])
	}()
	select {
	case m := <-got:
		return m
	case <-exited:
		n.t.Fatalf("lbagent exited while the test waited for sd_notify:\n%s", log())
		return ""
	}
}

// agentProc is a started lbagent run with its output collected.
type agentProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    testenv.Output
}

func (p *agentProc) log() string { return p.out.String() }

// startLBAgent runs bin for node n with the admin port on admin; it is stopped at cleanup.
func startLBAgent(t *testing.T, bin string, n *testenv.Node, admin string, env ...string) *agentProc {
	t.Helper()
	return startProc(t, exec.Command(bin, "run", "--xroad-dir", n.XRoadDir, "--ocsp-cache-dir", n.OCSPDir, "--admin-listen", admin), env...)
}

// startProc starts cmd with env added and its output collected; it is stopped at cleanup.
func startProc(t *testing.T, cmd *exec.Cmd, env ...string) *agentProc {
	t.Helper()
	p := &agentProc{exited: make(chan struct{}), cmd: cmd}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)
	return p
}

// stop ends the agent (SIGTERM) and waits for it.
func (p *agentProc) stop() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.exited
	}
}

func adminGet(t *testing.T, admin, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestReadyAndReload runs the built lbagent under a fake systemd notify socket: READY=1
// comes once the health, admin and agent-check ports accept connections; SIGHUP applies a new
// check timeout with maintenance mode kept; a bad configuration is refused with a log line and
// the daemon serves on with the old one.
func TestReadyAndReload(t *testing.T) {
	ctx := context.Background()
	bin, err := testenv.BuildLBAgent(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	acPort, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	agentCheck := fmt.Sprintf("[agent-check]\nlisten = 127.0.0.1:%d\n", acPort)
	n := testenv.NewNode(t, testenv.NodeOptions{LBAgentINI: "[lbagent]\ncheck-timeout = 5s\n" + agentCheck})
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	ns := newNotifySocket(t)

	p := startLBAgent(t, bin, n, admin, "NOTIFY_SOCKET="+ns.path)
	cmd, exited, log := p.cmd, p.exited, p.log

	if m := ns.next(exited, log); !strings.Contains(m, "READY=1") {
		t.Fatalf("first notification %q; want READY=1", m)
	}
	for name, addr := range map[string]string{"health": n.HealthAddr, "admin": admin, "agent-check": fmt.Sprintf("127.0.0.1:%d", acPort)} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Errorf("%s port %s not accepting at READY: %v", name, addr, err)
			continue
		}
		c.Close()
	}
	if got := strings.TrimSpace(adminGet(t, admin, "/maintenance?targetState=true")); got != "Maintenance mode set: false => true" {
		t.Fatalf("maintenance on: %q", got)
	}

	lbagentINI := filepath.Join(n.XRoadDir, "conf.d", "lbagent.ini")
	reload := func(content string) {
		t.Helper()
		if err := os.WriteFile(lbagentINI, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if m := ns.next(exited, log); !strings.Contains(m, "RELOADING=1") {
			t.Fatalf("notification %q; want RELOADING=1", m)
		}
		if m := ns.next(exited, log); !strings.Contains(m, "READY=1") {
			t.Fatalf("notification %q; want READY=1 after the reload", m)
		}
	}

	// waitLog waits until the daemon's output (read through a pipe, so behind the notify
	// socket) has a line with want; the test's -timeout bounds the wait.
	mark := 0 // waitLog looks at the output from here on
	waitLog := func(want string) string {
		t.Helper()
		for {
			out := log()[mark:]
			if strings.Contains(out, want) {
				return out
			}
			select {
			case <-exited:
				t.Fatalf("lbagent exited; no %q in:\n%s", want, out)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}

	reload("[lbagent]\ncheck-timeout = 1s\nmax-connections = 64\n" + agentCheck)
	out := waitLog("next restart")
	if !strings.Contains(out, `"Server conf database status=1s/2s/30s"`) || !strings.Contains(out, "configuration reloaded") {
		t.Errorf("no reload with the 1s timeout logged:\n%s", out)
	}
	if !strings.Contains(out, "[lbagent] max-connections") || !strings.Contains(out, "next restart") {
		t.Errorf("the changed connection cap is not logged as needing a restart:\n%s", out)
	}
	if st := adminGet(t, admin, "/status"); !strings.Contains(st, `"state":"maintenance"`) && !strings.Contains(st, `"state": "maintenance"`) {
		t.Errorf("maintenance lost by the reload; /status:\n%s", st)
	}

	// The agent-check's and push's settings are read at the start only: a reload says so
	// (issue 12 bug 7: document and log what needs a restart).
	mark = len(log())
	reload("[lbagent]\ncheck-timeout = 1s\nmax-connections = 64\n" + agentCheck + "maintenance-word = maint\n" +
		"[push]\nhaproxy-socket = /run/haproxy/admin.sock\nbackend = xroad\nserver = ss1\n")
	if out := waitLog("next restart"); !strings.Contains(out, `,"[agent-check]","[push]"]`) {
		t.Errorf("changed [agent-check] and [push] not logged as needing a restart:\n%s", out)
	}
	mark = len(log())

	reload("[lbagent]\nfailure-ttl = often\n" + agentCheck)
	out = waitLog("configuration reload refused")
	if !strings.Contains(out, "configuration reload refused") || !strings.Contains(out, `failure-ttl = \"often\"`) {
		t.Errorf("bad configuration not refused with a log line naming it:\n%s", out)
	}
	select {
	case <-exited:
		t.Fatalf("lbagent exited after a bad reload:\n%s", out)
	default:
	}
	if st := adminGet(t, admin, "/status"); !strings.Contains(st, "maintenance") {
		t.Errorf("maintenance lost after the refused reload; /status:\n%s", st)
	}
	resp, err := http.Get("http://" + n.HealthAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health port after the reloads: %d; want 503 (maintenance)", resp.StatusCode)
	}
}
