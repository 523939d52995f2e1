package targetgroup_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/aws/targetgroup"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/testenv/elbv2"
)

// fixture is the local ELBv2 endpoint with one target group whose only target is a loopback
// HTTP server answering code (200 unless changed).
type fixture struct {
	srv  *elbv2.Server
	arn  string
	node lbadapters.Node
	code atomic.Int32
	slow atomic.Bool // the target answers after 10 health check timeouts
	cfg  lbadapters.BalancerConfig
	stop func() // stops the target's HTTP server
}

// sdkEnv points the SDK at nothing but what the test gives it: no shared config files, no
// instance metadata, the endpoint's test credentials.
func sdkEnv(t *testing.T, srv *elbv2.Server) {
	id, secret := srv.Credentials()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2": ""} {
		t.Setenv(k, v)
	}
}

func newFixture(t *testing.T, delaySeconds int) *fixture {
	t.Helper()
	f := &fixture{}
	f.code.Store(200)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.slow.Load() {
			select {
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(int(f.code.Load()))
	})}
	go func() { _ = hs.Serve(ln) }()
	f.stop = func() { _ = hs.Close() }
	t.Cleanup(f.stop)
	port := ln.Addr().(*net.TCPAddr).Port

	f.srv, err = elbv2.Start(elbv2.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.srv.Close() })
	f.arn, err = f.srv.CreateTargetGroup(elbv2.TargetGroup{Name: "xroad-ss", Port: port,
		HealthCheck:                elbv2.HealthCheck{Matcher: "200", Interval: 50 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2},
		DeregistrationDelaySeconds: delaySeconds, NoDeregistrationDelay: delaySeconds == 0})
	if err != nil {
		t.Fatal(err)
	}
	sdkEnv(t, f.srv)
	f.node = lbadapters.Node{Name: "ss2", Address: "127.0.0.1", TargetID: "127.0.0.1"}
	f.cfg = lbadapters.BalancerConfig{Name: "nlb", Type: "aws", TargetGroupARN: f.arn, Region: f.srv.Region(),
		Endpoint: f.srv.URL, CallTimeout: 20 * time.Second}
	return f
}

func (f *fixture) adapter(t *testing.T) *targetgroup.Adapter {
	t.Helper()
	a, err := targetgroup.New(t.Context(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitState polls the adapter until the target's ELBv2 state is want.
func waitState(t *testing.T, a *targetgroup.Adapter, n lbadapters.Node, want string) lbadapters.ServerState {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		s, err := a.State(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status == want {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("target still %s (%s); want %s", s.Status, s.Reason, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestEnableThenDrainThroughSDK(t *testing.T) {
	f := newFixture(t, 1)
	a := f.adapter(t)
	s, err := a.State(t.Context(), f.node)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "unused" || s.Reason != "Target.NotRegistered" || s.State != lbadapters.StateMaint || s.Sessions != lbadapters.NotCounted {
		t.Errorf("before registration: %+v; want unused (Target.NotRegistered), MAINT, not counted", s)
	}
	// Health checks hold still while we look at "initial" (else a slow machine may see the
	// two passing checks, 100 ms, before the look).
	f.srv.PauseHealthChecks(true)
	if err := a.Enable(t.Context(), f.node); err != nil {
		t.Fatal(err)
	}
	s, err = a.State(t.Context(), f.node)
	if err != nil || s.Status != "initial" || s.State != lbadapters.StateDown || s.Sessions != lbadapters.NotCounted {
		t.Errorf("right after RegisterTargets: %+v, %v; want initial, DOWN, not counted", s, err)
	}
	f.srv.PauseHealthChecks(false)
	s = waitState(t, a, f.node, "healthy")
	if s.State != lbadapters.StateUp {
		t.Errorf("healthy maps to %s; want UP", s.State)
	}
	if checks := f.srv.Checks(f.arn, "127.0.0.1", 0); len(checks) < 2 || !checks[0].OK || !checks[1].OK {
		t.Errorf("healthy after checks %+v; want two passing ones first", checks)
	}

	f.code.Store(503)
	s = waitState(t, a, f.node, "unhealthy")
	if s.Reason != "Target.ResponseCodeMismatch" || s.Description != "Health checks failed with these codes: [503]" {
		t.Errorf("unhealthy: %+v; want Target.ResponseCodeMismatch with the code", s)
	}
	f.code.Store(200)
	waitState(t, a, f.node, "healthy")

	start := time.Now()
	if err := a.Drain(t.Context(), f.node); err != nil {
		t.Fatal(err)
	}
	s, err = a.State(t.Context(), f.node)
	if err != nil || s.Status != "draining" || s.Reason != "Target.DeregistrationInProgress" || s.DrainLimit != time.Second {
		t.Errorf("right after DeregisterTargets: %+v, %v; want draining with a 1s limit", s, err)
	}
	waitState(t, a, f.node, "unused")
	if d := time.Since(start); d < time.Second {
		t.Errorf("unused after %s; want the deregistration delay of 1s first", d)
	}
}

// TestUnhealthyReasons: a target that answers too late is unhealthy with Target.Timeout, one
// that refuses connections with Target.FailedHealthChecks.
func TestUnhealthyReasons(t *testing.T) {
	f := newFixture(t, 0)
	a := f.adapter(t)
	if err := a.Enable(t.Context(), f.node); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, f.node, "healthy")
	f.slow.Store(true)
	if s := waitState(t, a, f.node, "unhealthy"); s.Reason != "Target.Timeout" || s.Description != "Request timed out" {
		t.Errorf("slow target: %+v; want Target.Timeout", s)
	}
	f.slow.Store(false)
	waitState(t, a, f.node, "healthy")
	f.stop()
	if s := waitState(t, a, f.node, "unhealthy"); s.Reason != "Target.FailedHealthChecks" {
		t.Errorf("closed target: %+v; want Target.FailedHealthChecks", s)
	}
}

func TestDescribe(t *testing.T) {
	f := newFixture(t, 7)
	got, err := f.adapter(t).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s := got.(targetgroup.Settings)
	want := targetgroup.HealthCheck{Enabled: true, Protocol: "HTTP", Port: "traffic-port", Path: "/", Matcher: "200",
		IntervalSeconds: 1, TimeoutSeconds: 1, HealthyThreshold: 2, UnhealthyThreshold: 2}
	if s.HealthCheck != want || s.DeregistrationDelaySeconds != 7 || s.Name != "xroad-ss" || s.Protocol != "TCP" || s.TargetGroupARN != f.arn {
		t.Errorf("got %+v; want health check %+v, delay 7", s, want)
	}
}

func TestThrottledCallsAreRetried(t *testing.T) {
	f := newFixture(t, 0)
	f.srv.Throttle(2)
	if _, err := f.adapter(t).State(t.Context(), f.node); err != nil {
		t.Fatalf("after 2 throttled calls: %v; want the SDK's retries to get through", err)
	}
	if n := f.srv.Refused("Throttling"); n != 2 {
		t.Errorf("%d calls throttled; want 2", n)
	}
}

// TestEndpointFromEnvironment: without an endpoint key, the SDK's service-specific
// environment variable points the client at the endpoint, and the region comes from the ARN.
func TestEndpointFromEnvironment(t *testing.T) {
	f := newFixture(t, 0)
	t.Setenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", f.srv.URL)
	f.cfg.Endpoint, f.cfg.Region = "", ""
	before := f.srv.Calls("DescribeTargetHealth")
	if _, err := f.adapter(t).State(t.Context(), f.node); err != nil {
		t.Fatal(err)
	}
	if f.srv.Calls("DescribeTargetHealth") != before+1 {
		t.Error("the call did not reach the endpoint named by AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2")
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t, 0)
	tests := []struct {
		name  string
		cfg   func(*lbadapters.BalancerConfig)
		env   map[string]string
		fault func()
		node  lbadapters.Node
		kind  error
		msg   string
	}{
		{name: "no such target group", kind: lbadapters.ErrNotFound, msg: "TargetGroupNotFound",
			cfg: func(c *lbadapters.BalancerConfig) {
				c.TargetGroupARN = strings.Replace(c.TargetGroupARN, "xroad-ss", "nope", 1)
			}},
		{name: "invalid target", node: lbadapters.Node{Name: "ss9", Address: "10.0.0.9"}, kind: lbadapters.ErrNotFound, msg: "InvalidTarget"},
		{name: "wrong secret", env: map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}, kind: lbadapters.ErrDenied, msg: "SignatureDoesNotMatch"},
		{name: "unknown key", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIAUNKNOWN"}, kind: lbadapters.ErrDenied, msg: "InvalidClientTokenId"},
		{name: "denied", fault: func() { f.srv.Deny(true) }, kind: lbadapters.ErrDenied, msg: "AccessDenied"},
		{name: "expired credentials", env: map[string]string{"AWS_SESSION_TOKEN": "FQoGZXIvYXdzEXAMPLETOKEN"},
			fault: func() { f.srv.ExpireSessionTokens(true) }, kind: lbadapters.ErrDenied, msg: "ExpiredToken"},
		{name: "no answer", fault: func() { f.srv.Delay(5 * time.Second) }, kind: lbadapters.ErrUnreachable, msg: "no answer within 300ms",
			cfg: func(c *lbadapters.BalancerConfig) { c.CallTimeout = 300 * time.Millisecond }},
		{name: "unreachable", kind: lbadapters.ErrUnreachable, msg: "connection refused",
			cfg: func(c *lbadapters.BalancerConfig) { c.Endpoint = "http://127.0.0.1:" + strconv.Itoa(closedPort(t)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.cfg
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if tt.fault != nil {
				tt.fault()
				t.Cleanup(func() { f.srv.Deny(false); f.srv.Delay(0); f.srv.ExpireSessionTokens(false) })
			}
			a, err := targetgroup.New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			n := f.node
			if tt.node.Name != "" {
				n = tt.node
			}
			err = a.Enable(t.Context(), n)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v; want %v with %q", err, tt.kind, tt.msg)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || strings.Contains(msg, "operation error") || strings.Contains(msg, elbv2.DefaultSecretAccessKey) || strings.Contains(msg, "EXAMPLETOKEN") {
				t.Errorf("message %q: want one line of our own, no SDK text, no secret", msg)
			}
		})
	}
}

// closedPort is a loopback port that nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
