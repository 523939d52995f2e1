package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/lbadapters/haproxyadapter"
	"github.com/xroad-lb/lbkit/testenv"
)

// drainEnv is a real HAProxy with one backend "xroad" and server ss2, and a cluster config
// that names it.
type drainEnv struct {
	h       *testenv.HAProxy
	msg     *testenv.MsgServer
	config  string
	adapter *haproxyadapter.Adapter
	node    lbadapters.Node
}

func newDrainEnv(t *testing.T, serverOptions ...string) *drainEnv {
	t.Helper()
	msg := testenv.NewMsgServer(t, "127.0.0.2:0")
	h := testenv.NewHAProxy(t, testenv.HAProxyOptions{
		Frontends: []testenv.HAFrontend{{Name: "fe", Bind: "127.0.0.1:0", Backend: "xroad"}},
		Backends: []testenv.HABackend{{Name: "xroad", Servers: []testenv.HAServer{
			{Name: "ss2", Addr: msg.Addr, Options: strings.Join(serverOptions, " ")}}}},
	})
	config := filepath.Join(t.TempDir(), "cluster.ini")
	ini := fmt.Sprintf("[balancer]\ntype = haproxy\nruntime-api = %s\nbackend = xroad\n\n[node \"ss2\"]\naddress = 127.0.0.2\nrole = secondary\nserver = ss2\n", h.AdminSocket)
	if err := os.WriteFile(config, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := haproxyadapter.New(lbadapters.BalancerConfig{Type: "haproxy", RuntimeAPI: h.AdminSocket, Backend: "xroad"})
	if err != nil {
		t.Fatal(err)
	}
	return &drainEnv{h: h, msg: msg, config: config, adapter: a, node: lbadapters.Node{Name: "ss2", Server: "ss2"}}
}

// lbadapter runs the command in this process with ctx standing in for the signals.
func (e *drainEnv) lbadapter(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = runContext(ctx, append([]string{"-c", e.config}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// open makes one connection through HAProxy to ss2 and waits until HAProxy counts it.
func (e *drainEnv) open(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", e.h.FrontendAddr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.waitState(t, func(s lbadapters.ServerState) bool { return s.Sessions == 1 }, "1 session")
	return c
}

func (e *drainEnv) waitState(t *testing.T, ok func(lbadapters.ServerState) bool, want string) lbadapters.ServerState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := e.adapter.State(context.Background(), e.node)
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy shows ss2 %+v, %v; want %s", s, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDrainKeepsMaint: issue 12, bug 6. "set server state drain" on a server in MAINT would
// take it out of maintenance (health checks and persistent connections come back).
func TestDrainKeepsMaint(t *testing.T) {
	e := newDrainEnv(t)
	client := haproxy.NewClient(e.h.AdminSocket)
	if err := client.SetServerState(context.Background(), "xroad", "ss2", haproxy.StateMaint); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := e.lbadapter(context.Background(), "drain", "ss2", "--poll", "20ms", "--timeout", "20s")
	if code != 0 {
		t.Fatalf("drain of a MAINT server: exit %d\n%s%s", code, out, errOut)
	}
	if s, err := e.adapter.State(context.Background(), e.node); err != nil || s.Status != "MAINT" {
		t.Errorf("after drain: HAProxy shows %+v, %v; want MAINT kept", s, err)
	}
	if want := "ss2: already MAINT, kept (a drain would turn health checks and persistent connections back on), 0 sessions left\n"; out != want {
		t.Errorf("stdout %q; want %q", out, want)
	}
}

// TestDrainInterrupted: Ctrl-C while drain waits says what state the node is left in
// (issue 12, bug 8), and a single session is "1 session".
func TestDrainInterrupted(t *testing.T) {
	e := newDrainEnv(t)
	e.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	errOut := &testenv.Output{}
	go func() {
		// The operator presses Ctrl-C once drain has shown HAProxy's DRAIN (its first look).
		defer cancel()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if strings.Contains(errOut.String(), "drain ss2: DRAIN, 1 session left") {
				return
			}
		}
	}()
	code := runContext(ctx, []string{"-c", e.config, "drain", "ss2", "--poll", "20ms"}, &out, errOut)
	stderr := errOut.String()
	if code != 130 {
		t.Errorf("exit %d; want 130", code)
	}
	if want := "lbadapter: drain ss2: interrupted; ss2 stays DRAIN, 1 session left\n"; !strings.HasSuffix(stderr, want) || strings.Contains(stderr, "context canceled") {
		t.Errorf("stderr %q; want it to end with %q", stderr, want)
	}
	if strings.Contains(stderr, "1 sessions") {
		t.Errorf("progress says \"1 sessions\":\n%s", stderr)
	}
	if out.String() != "" {
		t.Errorf("stdout %q; want nothing", out.String())
	}
}

// TestStatusExplainsDrainAgent: HAProxy writes "DRAIN (agent)" for a drained server that has
// an agent-check, whoever drained it; after an operator's drain, status says so (issue 12,
// bug 8).
func TestStatusExplainsDrainAgent(t *testing.T) {
	agentPort, err := testenv.FreePort("127.0.0.2") // nothing listens: HAProxy ignores an unreachable agent
	if err != nil {
		t.Fatal(err)
	}
	e := newDrainEnv(t, fmt.Sprintf("agent-check agent-addr 127.0.0.2 agent-port %d agent-inter 1s", agentPort))
	if code, out, errOut := e.lbadapter(context.Background(), "drain", "ss2", "--no-wait"); code != 0 {
		t.Fatalf("drain: exit %d\n%s%s", code, out, errOut)
	}
	_, out, _ := e.lbadapter(context.Background(), "status")
	if !strings.Contains(out, "DRAIN (agent)") {
		t.Fatalf("status after an operator drain:\n%s\nwant HAProxy's DRAIN (agent)", out)
	}
	want := `note: HAProxy shows "DRAIN (agent)" for any drained server that has an agent-check, whoever drained it (lbadapter drain or the node's lbagent)` + "\n"
	if !strings.HasSuffix(out, want) {
		t.Errorf("status:\n%s\nwant it to end with %q", out, want)
	}
	if err := haproxy.NewClient(e.h.AdminSocket).SetServerState(context.Background(), "xroad", "ss2", haproxy.StateReady); err != nil {
		t.Fatal(err)
	}
	e.waitState(t, func(s lbadapters.ServerState) bool { return s.State == lbadapters.StateUp }, "UP")
	if _, out, _ := e.lbadapter(context.Background(), "status"); strings.Contains(out, "note:") {
		t.Errorf("status of an UP server has a note:\n%s", out)
	}
}

// TestDrainEnableDurationFlags: a negative --timeout or a --poll of 0 is a usage error before
// any balancer is touched (the cluster file names no reachable one).
func TestDrainEnableDurationFlags(t *testing.T) {
	config := filepath.Join(t.TempDir(), "cluster.ini")
	if err := os.WriteFile(config, []byte("[balancer]\ntype = haproxy\nruntime-api = /nonexistent.sock\nbackend = b\n"+
		"[node \"ss2\"]\naddress = 127.0.0.2\nrole = secondary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"drain", "ss2", "--timeout", "-1m"}, "--timeout -1m0s: want a positive duration"},
		{[]string{"drain", "ss2", "--poll", "0"}, "--poll 0: want a positive duration"},
		{[]string{"enable", "ss2", "--timeout", "-1s"}, "--timeout -1s: want a positive duration"},
		{[]string{"enable", "ss2", "--poll", "-20ms"}, "--poll -20ms: want a positive duration"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"-c", config}, tt.args...), &out, &errb)
		if code != 2 || errb.String() != "lbadapter: "+tt.want+"\n" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, errb.String(), tt.want)
		}
	}
}
