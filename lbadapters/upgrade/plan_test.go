package upgrade

import (
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters"
)

const testCluster = `[balancer]
type = haproxy
runtime-api = /run/haproxy/admin.sock
backend = xroad

[ssh]
lbagent = /usr/bin/lbagent

[node "ss1"]
address = 10.0.0.1
role = primary

[node "ss2"]
address = 10.0.0.2
role = secondary
lbagent = sudo -u xroad lbagent
db-lbagent = sudo -u pg lbagent

[node "ss3"]
address = 10.0.0.3
role = secondary
`

func plan(t *testing.T, o Options) []string {
	t.Helper()
	c, err := lbadapters.Parse([]byte(testCluster))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := Plan(c, o)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Node + " " + s.Kind
		if s.Remote != "" {
			out[i] += ": " + s.Remote
		}
		if s.Status != Pending {
			t.Errorf("step %d status %q; want pending", i, s.Status)
		}
	}
	return out
}

// TestPlanOnline: the guide's 7.2 order, the nodes' own lbagent commands.
func TestPlanOnline(t *testing.T) {
	got := strings.Join(plan(t, Options{Command: "apt-get -y install --only-upgrade xroad-securityserver"}), "\n")
	want := `ss2 pause-replay: sudo -u pg lbagent db pause
ss2 pause-sync: sudo -u xroad lbagent sync pause
ss3 pause-replay: sudo -u postgres lbagent db pause
ss3 pause-sync: /usr/bin/lbagent sync pause
ss1 drain
ss1 upgrade: apt-get -y install --only-upgrade xroad-securityserver
ss1 wait-healthy
ss1 enable
ss2 drain
ss2 resume-replay: sudo -u pg lbagent db resume
ss2 wait-caught-up: sudo -u pg lbagent db wait-caught-up
ss2 upgrade: apt-get -y install --only-upgrade xroad-securityserver
ss2 resume-sync: sudo -u xroad lbagent sync resume
ss2 sync-once: sudo -u xroad lbagent sync --once
ss2 wait-healthy
ss2 enable
ss3 drain
ss3 resume-replay: sudo -u postgres lbagent db resume
ss3 wait-caught-up: sudo -u postgres lbagent db wait-caught-up
ss3 upgrade: apt-get -y install --only-upgrade xroad-securityserver
ss3 resume-sync: /usr/bin/lbagent sync resume
ss3 sync-once: /usr/bin/lbagent sync --once
ss3 wait-healthy
ss3 enable`
	if got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

// TestPlanOffline: 7.1: all out, the primary, propagate, the secondaries, all in.
func TestPlanOffline(t *testing.T) {
	got := strings.Join(plan(t, Options{Command: "up", Offline: true}), "\n")
	want := `ss1 drain
ss2 drain
ss3 drain
ss1 upgrade: up
ss1 wait-healthy
ss2 wait-caught-up: sudo -u pg lbagent db wait-caught-up
ss2 sync-once: sudo -u xroad lbagent sync --once
ss2 upgrade: up
ss2 wait-healthy
ss3 wait-caught-up: sudo -u postgres lbagent db wait-caught-up
ss3 sync-once: /usr/bin/lbagent sync --once
ss3 upgrade: up
ss3 wait-healthy
ss1 enable
ss2 enable
ss3 enable`
	if got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

// TestPlanNodes: --nodes in any order; the primary still first; secondaries alone are not
// paused up front (nothing new comes from the primary).
func TestPlanNodes(t *testing.T) {
	got := plan(t, Options{Command: "up", Nodes: []string{"ss3", "ss1"}})
	if got[0] != "ss3 pause-replay: sudo -u postgres lbagent db pause" || got[2] != "ss1 drain" || len(got) != 2+4+8 {
		t.Errorf("plan: %q", got)
	}
	got = plan(t, Options{Command: "up", Nodes: []string{"ss3"}})
	if got[0] != "ss3 drain" || len(got) != 8 {
		t.Errorf("plan of ss3 alone: %q", got)
	}
}

func TestPlanErrors(t *testing.T) {
	c, err := lbadapters.Parse([]byte(testCluster))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{}, "--command is required"},
		{Options{Command: "  "}, "--command is required"},
		{Options{Command: "up", Nodes: []string{"ss4"}}, `unknown node "ss4"`},
		{Options{Command: "up", Nodes: []string{"ss2", "ss2"}}, "--nodes lists ss2 twice"},
	} {
		if _, err := Plan(c, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Plan(%+v) = %v; want an error containing %q", tt.o, err, tt.want)
		}
	}
}

// TestSummarize: rows in upgrade order, drain and downtime from the steps' times, a failed
// node marked drained, an untouched one "not started".
func TestSummarize(t *testing.T) {
	c, err := lbadapters.Parse([]byte(testCluster))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := Plan(c, Options{Command: "up"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	at := t0
	for i := range steps {
		if steps[i].Node == "ss2" && steps[i].Kind == KindUpgrade {
			steps[i].Status, steps[i].Start, steps[i].Took = Failed, at, time.Second
			break
		}
		steps[i].Status, steps[i].Start, steps[i].Took = Done, at, 2*time.Second
		at = at.Add(3 * time.Second)
	}
	st := &State{Before: map[string]string{"ss1": "1", "ss2": "1", "ss3": "1"}, After: map[string]string{"ss1": "2"}, Steps: steps}
	var b strings.Builder
	WriteTable(&b, Summarize(st))
	want := `NODE     VERSION                        DRAIN     DOWNTIME  RESULT
ss1      1 -> 2                         2.0s      11.0s     upgraded
ss2      1 -> ?                         2.0s      -         FAILED at upgrade (drained)
ss3      1 -> ?                         -         -         not started
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	if d := Drained(st); len(d) != 1 || d[0] != "ss2" {
		t.Errorf("Drained = %v; want [ss2]", d)
	}
}
