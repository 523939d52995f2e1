package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/aws/targetgroup"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/elbv2"
)

// TestAWSCluster runs a 3-node cluster (real lbagents) behind a real HAProxy and, as
// [balancer "nlb"], a target group of the local ELBv2 endpoint that health-checks the
// lbagents' health ports over HTTP (interval 200ms, thresholds 2/2, matcher 200,
// deregistration delay 2s). lbadapter talks to the endpoint through aws-sdk-go-v2.
func TestAWSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, HAProxy, three lbagents and the ELBv2 endpoint")
	}
	testenv.Require(t, "haproxy")
	agentBin, lbadapter := buildBoth(t)
	c := testenv.NewCluster(t, testenv.ClusterOptions{LBAgent: agentBin, ELBv2: true, ELBv2DelaySeconds: 2})
	for _, kv := range c.AWSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	elb, arn := c.ELBv2, c.TargetGroupARN
	health := func(n string) elbv2.Health {
		node := c.Node(n)
		return elb.Health(arn, node.IP, node.MsgPort())
	}
	waitHealth := func(t *testing.T, ctx context.Context, n, state string) {
		t.Helper()
		node := c.Node(n)
		if err := elb.WaitHealth(ctx, arn, node.IP, node.MsgPort(), state); err != nil {
			t.Fatalf("%v\n%s", err, node.Log(10))
		}
	}
	both := c.ConfigPath
	full, err := os.ReadFile(both)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// nlbOnly: the same cluster with the target group as its only balancer.
	hap, rest, ok := strings.Cut(string(full), "[balancer \"nlb\"]")
	if !ok || !strings.HasPrefix(hap, "[balancer]\n") {
		t.Fatalf("cluster.ini has no [balancer] then [balancer \"nlb\"]:\n%s", full)
	}
	nlbOnly := write("nlb.ini", "[balancer \"nlb\"]"+rest)
	adapter := func(ctx context.Context, cfg string, args ...string) result {
		return runLBAdapter(ctx, lbadapter, append([]string{"--config", cfg}, args...)...)
	}

	t.Run("status shows every balancer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r := adapter(ctx, both, "status")
		if r.code != 0 {
			t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 4 || !strings.Contains(lines[0], "BALANCER  NLB") {
			t.Fatalf("status table:\n%s", r.stdout)
		}
		for _, l := range lines[1:] {
			if !strings.Contains(l, "healthy  UP        healthy") {
				t.Errorf("row %q: want agent healthy, HAProxy UP, NLB healthy", l)
			}
		}
		r = adapter(ctx, both, "status", "-o", "json")
		if r.code != 0 {
			t.Fatalf("status -o json: exit %d\n%s", r.code, r.stderr)
		}
		var rep struct {
			Balancers []struct {
				Name     string                `json:"name"`
				Type     string                `json:"type"`
				Settings *targetgroup.Settings `json:"settings"`
			} `json:"balancers"`
			Nodes []lbadapters.NodeStatus `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		if len(rep.Balancers) != 2 || rep.Balancers[0].Settings != nil || rep.Balancers[1].Settings == nil {
			t.Fatalf("balancers: %+v; want balancer (no settings) and nlb (settings)", rep.Balancers)
		}
		s := rep.Balancers[1].Settings
		if s.HealthCheck.Matcher != "200" || s.HealthCheck.HealthyThreshold != 2 || s.DeregistrationDelaySeconds != 2 ||
			s.HealthCheck.Port != strconv.Itoa(c.Nodes[0].HealthPort) || s.HealthCheck.Protocol != "HTTP" {
			t.Errorf("nlb settings: %+v", s)
		}
		for _, n := range rep.Nodes {
			if len(n.Balancers) != 2 || n.Balancers[1].State == nil || n.Balancers[1].State.Status != "healthy" {
				t.Errorf("%s: balancers %+v; want nlb healthy", n.Node.Name, n.Balancers)
			}
		}
	})

	t.Run("drain waits out the deregistration delay", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		r := adapter(ctx, nlbOnly, "drain", "ss2", "--poll", "100ms")
		took := time.Since(start)
		if r.code != 0 {
			t.Fatalf("drain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if took < 2*time.Second {
			t.Errorf("drain returned after %s; want the deregistration delay (2s) waited out", took)
		}
		if !strings.Contains(r.stderr, "drain ss2: draining, 0s of up to 2s") {
			t.Errorf("progress:\n%s", r.stderr)
		}
		if !strings.Contains(r.stdout, "ss2: drained (unused (Target.NotRegistered))") {
			t.Errorf("stdout %q", r.stdout)
		}
		if h := health("ss2"); h.State != elbv2.StateUnused {
			t.Errorf("endpoint shows ss2 %+v; want unused", h)
		}
	})

	t.Run("enable waits for two passing health checks", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r := adapter(ctx, nlbOnly, "enable", "ss2", "--poll", "20ms")
		if r.code != 0 {
			t.Fatalf("enable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "enable ss2: initial (Elb.") || !strings.Contains(r.stderr, "enable ss2: healthy") {
			t.Errorf("progress does not show initial, then healthy:\n%s", r.stderr)
		}
		if !strings.Contains(r.stdout, "ss2: enabled (healthy)") {
			t.Errorf("stdout %q", r.stdout)
		}
		node := c.Node("ss2")
		checks := elb.Checks(arn, node.IP, node.MsgPort())
		if len(checks) < 2 || !checks[0].OK || !checks[1].OK || checks[0].Code != 200 || checks[1].Code != 200 {
			t.Errorf("checks of ss2's lbagent since registration: %+v; want two passing (200) first", checks)
		}
		if len(checks) > 3 {
			t.Errorf("%d checks before enable returned; want it to return right after the second", len(checks))
		}
	})

	t.Run("maintenance turns the target unhealthy", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := c.Node("ss3")
		if err := n.SetMaintenance(ctx, true); err != nil {
			t.Fatal(err)
		}
		waitHealth(t, ctx, "ss3", elbv2.StateUnhealthy)
		if h := health("ss3"); h.Reason != elbv2.ReasonResponseCodeMismatch || h.Description != "Health checks failed with these codes: [503]" {
			t.Errorf("ss3: %+v; want Target.ResponseCodeMismatch for the 503", h)
		}
		r := adapter(ctx, nlbOnly, "status")
		if !strings.Contains(r.stdout, "maintenance  unhealthy (Target.ResponseCodeMismatch)") {
			t.Errorf("status:\n%s", r.stdout)
		}
		r = adapter(ctx, nlbOnly, "enable", "ss3", "--force", "--timeout", "1s", "--poll", "50ms")
		if r.code != 5 || !strings.Contains(r.stderr, "enable ss3: unhealthy (Target.ResponseCodeMismatch: Health checks failed with these codes: [503])") {
			t.Errorf("enable --force of a node in maintenance: exit %d; want 5 and AWS's reason\n%s", r.code, r.stderr)
		}
		if err := n.SetMaintenance(ctx, false); err != nil {
			t.Fatal(err)
		}
		waitHealth(t, ctx, "ss3", elbv2.StateHealthy)
	})

	t.Run("throttled first calls are survived", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		before := elb.Refused("Throttling")
		elb.Throttle(2)
		r := adapter(ctx, nlbOnly, "status")
		if r.code != 0 || strings.Count(r.stdout, "healthy") < 3 {
			t.Errorf("status after 2 throttled calls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if got := elb.Refused("Throttling") - before; got != 2 {
			t.Errorf("%d calls throttled; want 2", got)
		}
	})

	t.Run("exit codes and one-line errors", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		nlb, _ := os.ReadFile(nlbOnly)
		wrongARN := write("arn.ini", strings.Replace(string(nlb), "targetgroup/xroad-ss/", "targetgroup/xroad-nope/", 1))
		tests := []struct {
			name  string
			env   []string
			fault func()
			args  []string
			code  int
			msg   string
		}{
			{"wrong ARN drain", nil, nil, []string{"--config", wrongARN, "drain", "ss2"}, 4, "TargetGroupNotFound"},
			{"wrong ARN status", nil, nil, []string{"--config", wrongARN, "status"}, 4, "TargetGroupNotFound"},
			{"bad signature", []string{"AWS_SECRET_ACCESS_KEY=not-the-secret"}, nil, []string{"--config", nlbOnly, "status"}, 3, "SignatureDoesNotMatch"},
			{"denied", nil, func() { elb.Deny(true) }, []string{"--config", nlbOnly, "drain", "ss2"}, 3, "AccessDenied"},
			{"timeout", nil, nil, []string{"--config", nlbOnly, "drain", "ss2", "--timeout", "500ms", "--poll", "50ms"}, 5,
				"drain ss2: timed out after 1s, still draining (Target.DeregistrationInProgress)"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.fault != nil {
					tt.fault()
					defer elb.Deny(false)
				}
				r := runLBAdapterEnv(ctx, tt.env, lbadapter, tt.args...)
				if r.code != tt.code {
					t.Errorf("exit %d; want %d\n%s", r.code, tt.code, r.stderr)
				}
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				last := lines[len(lines)-1]
				if !strings.HasPrefix(last, "lbadapter: ") || !strings.Contains(last, tt.msg) {
					t.Errorf("stderr %q; want a last line 'lbadapter: ...%s...'", r.stderr, tt.msg)
				}
				for _, l := range lines {
					if strings.Contains(l, "operation error") || strings.Contains(l, "not-the-secret") {
						t.Errorf("stderr line %q: SDK text or the secret", l)
					}
				}
			})
		}
		if r := adapter(ctx, nlbOnly, "enable", "ss2", "--poll", "50ms"); r.code != 0 {
			t.Fatalf("enable ss2: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("drain and enable on both balancers", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r := adapter(ctx, both, "drain", "ss2", "--poll", "50ms")
		if r.code != 0 {
			t.Fatalf("drain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"ss2 [balancer]: drained (DRAIN", "ss2 [nlb]: drained (unused"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout %q; want %q", r.stdout, want)
			}
		}
		if !strings.Contains(r.stderr, "drain ss2 [nlb]: draining") || !strings.Contains(r.stderr, "drain ss2 [balancer]: DRAIN") {
			t.Errorf("progress lines do not name the balancers:\n%s", r.stderr)
		}
		if st, _, err := c.ServerStatus(ctx, "ss2"); err != nil || !strings.HasPrefix(st, "DRAIN") {
			t.Errorf("HAProxy ss2: %q, %v; want DRAIN", st, err)
		}
		r = adapter(ctx, both, "enable", "ss2", "--poll", "50ms")
		if r.code != 0 || !strings.Contains(r.stdout, "ss2 [balancer]: enabled (UP") || !strings.Contains(r.stdout, "ss2 [nlb]: enabled (healthy)") {
			t.Fatalf("enable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}

		// One balancer fails: the other still drains, the failure names its balancer.
		wrongARN := write("both-arn.ini", strings.Replace(string(full), "targetgroup/xroad-ss/", "targetgroup/xroad-nope/", 1))
		r = adapter(ctx, wrongARN, "drain", "ss3", "--poll", "50ms")
		if r.code != 4 {
			t.Errorf("drain with a wrong ARN on nlb: exit %d; want 4\n%s", r.code, r.stderr)
		}
		if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); !strings.HasPrefix(lines[len(lines)-1], "lbadapter: drain ss3 [nlb]: ") {
			t.Errorf("stderr %q; want the failure to name [nlb]", r.stderr)
		}
		if st, _, err := c.ServerStatus(ctx, "ss3"); err != nil || !strings.HasPrefix(st, "DRAIN") {
			t.Errorf("HAProxy ss3: %q, %v; want DRAIN all the same", st, err)
		}
		if r := adapter(ctx, both, "enable", "ss3", "--poll", "50ms"); r.code != 0 {
			t.Fatalf("enable ss3: exit %d\n%s", r.code, r.stderr)
		}
	})
}
