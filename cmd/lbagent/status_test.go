package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/testenv"
)

// TestStatusExitCodes runs lbagent status against a real agent on a node with a real
// serverconf database: 0 healthy, 4 in maintenance (table and -o json), 1 when a check
// fails, 3 once the agent is stopped, 2 for bad usage.
func TestStatusExitCodes(t *testing.T) {
	ctx := context.Background()
	bin, err := testenv.BuildLBAgent(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pg := testenv.NewPostgres(t, testenv.PostgresOptions{})
	acPort, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	n := testenv.NewNode(t, testenv.NodeOptions{DB: pg,
		LBAgentINI: fmt.Sprintf("[lbagent]\nsuccess-ttl = 100ms\n[agent-check]\nlisten = 127.0.0.1:%d\n", acPort)})
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	ns := newNotifySocket(t)
	p := startLBAgent(t, bin, n, admin, "NOTIFY_SOCKET="+ns.path)
	if m := ns.next(p.exited, p.log); !strings.Contains(m, "READY=1") {
		t.Fatalf("notification %q; want READY=1", m)
	}

	// until runs lbagent status until it exits with want (the checks' first results come
	// in the background); the test's -timeout bounds it.
	until := func(want int, args ...string) string {
		t.Helper()
		for {
			code, out := capture(t, append([]string{"status", "--admin", admin}, args...)...)
			if code == want {
				return out
			}
			select {
			case <-p.exited:
				t.Fatalf("lbagent exited; last status exit %d:\n%s\n%s", code, out, p.log())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	out := until(0)
	for _, want := range []string{"verdict      healthy", "role         standalone", "maintenance  off", "Server conf database status", "pass"} {
		if !strings.Contains(out, want) {
			t.Errorf("healthy status lacks %q:\n%s", want, out)
		}
	}

	if code, out := capture(t, "maintenance", "status", "--admin", admin); code != 0 || out != "maintenance mode: off\n" {
		t.Errorf("maintenance status: exit %d, %q; want 0 and \"maintenance mode: off\"", code, out)
	}
	if code, out := capture(t, "maintenance", "on", "--admin", admin); code != 0 || out != "Maintenance mode set: false => true\n" {
		t.Fatalf("maintenance on: exit %d, %q; want X-Road's answer", code, out)
	}
	if code, out := capture(t, "maintenance", "status", "--admin", admin); code != 0 || out != "maintenance mode: on\n" {
		t.Errorf("maintenance status: exit %d, %q; want 0 and \"maintenance mode: on\"", code, out)
	}
	code, out := capture(t, "status", "--admin", admin)
	if code != 4 || !strings.Contains(out, "maintenance  on") {
		t.Errorf("in maintenance: exit %d; want 4 and 'maintenance  on':\n%s", code, out)
	}
	code, out = capture(t, "status", "--admin", admin, "-o", "json")
	jsonPart := out[:strings.LastIndex(out, "}")+1]
	var doc struct {
		State       string `json:"state"`
		Maintenance bool   `json:"maintenance"`
	}
	if err := json.Unmarshal([]byte(jsonPart), &doc); code != 4 || err != nil || doc.State != "maintenance" || !doc.Maintenance {
		t.Errorf("-o json in maintenance: exit %d, %+v, %v; want 4 and the document:\n%s", code, doc, err, out)
	}
	adminGet(t, admin, "/maintenance?targetState=false")

	if err := n.Break(testenv.FaultGlobalConfExpired); err != nil {
		t.Fatal(err)
	}
	out = until(1)
	if !strings.Contains(out, "Global configuration is expired") {
		t.Errorf("failing status does not say why:\n%s", out)
	}

	p.stop()
	code, out = capture(t, "status", "--admin", admin)
	if code != 3 || !strings.Contains(out, "not running") {
		t.Errorf("agent stopped: exit %d; want 3 and 'not running':\n%s", code, out)
	}
	if code, out := capture(t, "status", "-o", "yaml"); code != 2 || !strings.Contains(out, `-o "yaml"`) {
		t.Errorf("-o yaml: exit %d, %q; want 2, a usage error", code, out)
	}
}

// TestStatusReplicationLine: the lag in lag-limit's units, as lbagent db status and lbadapter
// status print it (it was "3145728 bytes behind, last replayed 242s ago").
func TestStatusReplicationLine(t *testing.T) {
	for _, tt := range []struct {
		r    lbadapters.ReplicationStatus
		want string
	}{
		{lbadapters.ReplicationStatus{Up: true, Streaming: true}, "caught up"},
		{lbadapters.ReplicationStatus{Up: true, Streaming: true, LagBytes: 3 << 20, LagSeconds: 242}, "3.0MB behind, last replayed transaction 4m2s ago"},
		{lbadapters.ReplicationStatus{Up: true, Streaming: true, LagBytes: 1536, LagSeconds: 0.4}, "1.5kB behind"},
		{lbadapters.ReplicationStatus{Up: true, Streaming: true, Paused: true, LagBytes: 1536}, "paused, 1.5kB behind"},
		{lbadapters.ReplicationStatus{Up: true, Streaming: true, Paused: true}, "paused, caught up"},
		{lbadapters.ReplicationStatus{Up: true, LagBytes: 100}, "100B behind, not streaming"},
		{lbadapters.ReplicationStatus{Error: "connection refused"}, "? (connection refused)"},
	} {
		var b strings.Builder
		printNodeStatus(&b, statusDoc{Components: lbadapters.AgentComponents{Replication: &tt.r}})
		if want := "replication  " + tt.want + "\n"; !strings.Contains(b.String(), want) {
			t.Errorf("%+v: printed\n%s\nwant a line %q", tt.r, b.String(), want)
		}
	}
}
