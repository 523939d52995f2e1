package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/lbadapters"
)

func f64(v float64) *float64 { return &v }

func TestStatusTable(t *testing.T) {
	node := func(name, role, addr string) lbadapters.Node {
		return lbadapters.Node{Name: name, Role: role, Address: addr}
	}
	up := func(n int) []lbadapters.BalancerView {
		return []lbadapters.BalancerView{{Name: "balancer", State: &lbadapters.ServerState{State: lbadapters.StateUp, Status: "UP", Sessions: n}}}
	}
	rows := []lbadapters.NodeStatus{
		{Node: node("ss1", "primary", "127.0.0.2"), Balancers: up(3),
			Agent: &lbadapters.AgentStatus{State: "healthy", Role: "primary"}},
		{Node: node("ss2", "secondary", "127.0.0.3"), Balancers: up(0),
			Agent: &lbadapters.AgentStatus{State: "healthy", Role: "secondary", Components: lbadapters.AgentComponents{
				Replication: &lbadapters.ReplicationStatus{Up: true, Streaming: true},
				Sync:        &lbadapters.SyncStatus{Connected: true, AgeSeconds: f64(0.4)},
			}}},
		{Node: node("ss3", "secondary", "127.0.0.4"), Balancers: up(1),
			Agent: &lbadapters.AgentStatus{State: "healthy", Role: "secondary", Components: lbadapters.AgentComponents{
				Replication: &lbadapters.ReplicationStatus{Up: true, Streaming: true, Paused: true, LagBytes: 12800, LagSeconds: 4.4},
				Sync:        &lbadapters.SyncStatus{Paused: true, AgeSeconds: f64(330)},
			}}},
		{Node: node("ss4", "secondary", "127.0.0.5"), Balancers: []lbadapters.BalancerView{{Name: "balancer", State: &lbadapters.ServerState{State: lbadapters.StateDown, Status: "DOWN"}}},
			Agent: &lbadapters.AgentStatus{State: "unhealthy", Role: "secondary", Output: "Server conf replication lag 3145728 bytes, 0s exceeds the limit 1048576 bytes",
				Components: lbadapters.AgentComponents{
					Replication: &lbadapters.ReplicationStatus{Up: true, Streaming: true, Paused: true, LagBytes: 3 << 20},
					Sync:        &lbadapters.SyncStatus{},
				}}},
		{Node: node("ss5", "secondary", "127.0.0.6"), Balancers: up(0),
			Agent: &lbadapters.AgentStatus{State: "healthy", Role: "secondary", Components: lbadapters.AgentComponents{
				Replication: &lbadapters.ReplicationStatus{Error: "Server conf replication status unavailable"},
			}}},
		{Node: node("ss6", "secondary", "127.0.0.7"), Balancers: up(0),
			AgentErr: errors.New("x"), AgentError: "agent ss6 unreachable at http://127.0.0.7:5588/status: connect: connection refused"},
	}
	var out strings.Builder
	(&cli{stdout: &out}).printTable([]lbadapters.Named{{Name: "balancer"}}, rows)
	want := `NODE  ROLE       ADDRESS    AGENT        BALANCER  SESSIONS  LAG               SYNC AGE      REASON
ss1   primary    127.0.0.2  healthy      UP        3         -                 -             
ss2   secondary  127.0.0.3  healthy      UP        0         0B                0s            
ss3   secondary  127.0.0.4  healthy      UP        1         12.5kB 4s paused  5m30s paused  
ss4   secondary  127.0.0.5  unhealthy    DOWN      0         3.0MB paused      never         Server conf replication lag 3145728 bytes, 0s exceeds the limit 1048576 bytes
ss5   secondary  127.0.0.6  healthy      UP        0         ?                 -             
ss6   secondary  127.0.0.7  unreachable  UP        0         -                 -             agent ss6 unreachable at http://127.0.0.7:5588/status: connect: connection refused
`
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

// TestStatusTableSeveralBalancers: one column per balancer, SESSIONS from the balancers that
// count them, and an ELBv2 target's description as the reason.
func TestStatusTableSeveralBalancers(t *testing.T) {
	hap := func(st lbadapters.State, status string, n int) lbadapters.BalancerView {
		return lbadapters.BalancerView{Name: "haproxy", State: &lbadapters.ServerState{State: st, Status: status, Sessions: n}}
	}
	nlb := func(st lbadapters.State, status, reason, desc string) lbadapters.BalancerView {
		return lbadapters.BalancerView{Name: "nlb", State: &lbadapters.ServerState{State: st, Status: status,
			Sessions: lbadapters.NotCounted, Reason: reason, Description: desc}}
	}
	healthy := &lbadapters.AgentStatus{State: "healthy", Role: "secondary"}
	rows := []lbadapters.NodeStatus{
		{Node: lbadapters.Node{Name: "ss1", Role: "primary", Address: "127.0.0.2"}, Agent: healthy,
			Balancers: []lbadapters.BalancerView{hap(lbadapters.StateUp, "UP", 2), nlb(lbadapters.StateUp, "healthy", "", "")}},
		{Node: lbadapters.Node{Name: "ss2", Role: "secondary", Address: "127.0.0.3"}, Agent: healthy,
			Balancers: []lbadapters.BalancerView{hap(lbadapters.StateDrain, "DRAIN", 1),
				nlb(lbadapters.StateDrain, "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")}},
		{Node: lbadapters.Node{Name: "ss3", Role: "secondary", Address: "127.0.0.4"}, Agent: healthy,
			Balancers: []lbadapters.BalancerView{hap(lbadapters.StateUp, "UP", 0), {Name: "nlb", Error: "AWS ELBv2 at http://127.0.0.1:1 DescribeTargetHealth unreachable: connection refused"}}},
	}
	var out strings.Builder
	(&cli{stdout: &out}).printTable([]lbadapters.Named{{Name: "haproxy"}, {Name: "nlb"}}, rows)
	want := `NODE  ROLE       ADDRESS    AGENT    HAPROXY  NLB                                         SESSIONS  LAG  SYNC AGE  REASON
ss1   primary    127.0.0.2  healthy  UP       healthy                                     2         -    -         
ss2   secondary  127.0.0.3  healthy  DRAIN    draining (Target.DeregistrationInProgress)  1         -    -         Target deregistration is in progress
ss3   secondary  127.0.0.4  healthy  UP       ?                                           ?         -    -         AWS ELBv2 at http://127.0.0.1:1 DescribeTargetHealth unreachable: connection refused
`
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

// TestReportWorstExitCode: several balancers' failures are one line each and the exit code
// is the highest of theirs.
func TestReportWorstExitCode(t *testing.T) {
	unreachable := fmt.Errorf("drain ss2 [haproxy]: HAProxy runtime API /run/x.sock unreachable: %w", lbadapters.ErrUnreachable)
	notFound := fmt.Errorf("drain ss2 [nlb]: AWS ELBv2 in eu-west-1 DeregisterTargets: TargetGroupNotFound: Target groups 'x' not found\n(see target-group-arn): %w", lbadapters.ErrNotFound)
	tests := []struct {
		err  error
		code int
		out  string
	}{
		{nil, 0, ""},
		{unreachable, 3, "lbadapter: drain ss2 [haproxy]: HAProxy runtime API /run/x.sock unreachable: balancer unreachable\n"},
		{outcomeErr([]lbadapters.Outcome{{Err: notFound}, {}, {Err: unreachable}}), 4,
			"lbadapter: drain ss2 [nlb]: AWS ELBv2 in eu-west-1 DeregisterTargets: TargetGroupNotFound: Target groups 'x' not found (see target-group-arn): not known to the balancer\n" +
				"lbadapter: drain ss2 [haproxy]: HAProxy runtime API /run/x.sock unreachable: balancer unreachable\n"},
	}
	for _, tt := range tests {
		var out strings.Builder
		if code := report(context.Background(), &out, tt.err); code != tt.code || out.String() != tt.out {
			t.Errorf("report(%v) = %d, %q; want %d, %q", tt.err, code, out.String(), tt.code, tt.out)
		}
	}
}

func TestStatusExitCodeForMonitoring(t *testing.T) {
	bs := []lbadapters.Named{{Name: "haproxy"}, {Name: "nlb"}}
	healthy := &lbadapters.AgentStatus{State: lbadapters.AgentHealthy}
	view := func(st lbadapters.State, words string) lbadapters.BalancerView {
		return lbadapters.BalancerView{State: &lbadapters.ServerState{State: st, Status: words}}
	}
	upBoth := []lbadapters.BalancerView{view(lbadapters.StateUp, "UP"), view(lbadapters.StateUp, "healthy")}
	tests := []struct {
		name  string
		row   lbadapters.NodeStatus
		lines []string
	}{
		{"healthy and UP everywhere", lbadapters.NodeStatus{Agent: healthy, Balancers: upBoth}, nil},
		{"agent unhealthy", lbadapters.NodeStatus{Agent: &lbadapters.AgentStatus{State: lbadapters.AgentUnhealthy, Output: "Global configuration is expired"}, Balancers: upBoth},
			[]string{"lbadapter: ss1: agent unhealthy: Global configuration is expired"}},
		{"maintenance", lbadapters.NodeStatus{Agent: &lbadapters.AgentStatus{State: lbadapters.AgentMaintenance}, Balancers: upBoth},
			[]string{"lbadapter: ss1: agent maintenance"}},
		{"unreachable", lbadapters.NodeStatus{AgentError: "agent ss1 unreachable at http://127.0.0.2:5588/status: connect: connection refused", Balancers: upBoth},
			[]string{"lbadapter: ss1: agent ss1 unreachable at http://127.0.0.2:5588/status: connect: connection refused"}},
		{"drained on one balancer", lbadapters.NodeStatus{Agent: healthy, Balancers: []lbadapters.BalancerView{view(lbadapters.StateDrain, "DRAIN"), view(lbadapters.StateUp, "healthy")}},
			[]string{"lbadapter: ss1: DRAIN on balancer haproxy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.row.Node = lbadapters.Node{Name: "ss1"}
			var stderr strings.Builder
			code := report(context.Background(), &stderr, outcomeErr(nil, nodeProblems(bs, []lbadapters.NodeStatus{tt.row})...))
			want := 0
			if len(tt.lines) > 0 {
				want = 1
			}
			got := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if stderr.Len() == 0 {
				got = nil
			}
			if code != want || fmt.Sprint(got) != fmt.Sprint(tt.lines) {
				t.Errorf("exit %d, lines %q; want %d, %q", code, got, want, tt.lines)
			}
		})
	}
	// A balancer that cannot be read keeps its own, higher code next to a node problem.
	err := outcomeErr(nil, append(errList(fmt.Errorf("haproxy: %w", lbadapters.ErrUnreachable)),
		nodeProblems(bs, []lbadapters.NodeStatus{{Node: lbadapters.Node{Name: "ss1"}, Agent: &lbadapters.AgentStatus{State: lbadapters.AgentMaintenance}}})...)...)
	if code := report(context.Background(), io.Discard, err); code != exitUnreachable {
		t.Errorf("unreachable balancer and a node in maintenance: exit %d; want %d", code, exitUnreachable)
	}
}
