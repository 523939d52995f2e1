package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp/reuseport"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/agent/xroadcheck"
	"github.com/xroad-lb/lbkit/testenv"
)

// fastINI makes failures clear quickly in tests (X-Road's defaults are 2 s and 30 s).
const fastINI = "[lbagent]\nsuccess-ttl = 100ms\nfailure-ttl = 100ms\n"

type running struct {
	t      *testing.T
	node   *testenv.Node
	agent  *Agent
	health string
	admin  string
}

func startAgent(t *testing.T, node *testenv.Node) *running {
	t.Helper()
	return startAgentOn(t, node, "127.0.0.1:0")
}

// startAgentOn is startAgent with the admin port on admin.
func startAgentOn(t *testing.T, node *testenv.Node, admin string) *running {
	t.Helper()
	return startAgentWith(t, node, Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir, AdminListen: admin})
}

// startAgentWith starts an agent for node with flags f; it is stopped at the test's end.
func startAgentWith(t *testing.T, node *testenv.Node, f Flags) *running {
	t.Helper()
	cfg, err := LoadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	})
	return &running{t: t, node: node, agent: a, health: a.HealthAddr(), admin: a.AdminAddr()}
}

func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHealth polls the health port until it answers code with body, or fails after 20 s.
func (r *running) waitHealth(code int, body string) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var gotCode int
	var gotBody string
	for time.Now().Before(deadline) {
		gotCode, gotBody = httpDo(r.t, "GET", "http://"+r.health+"/")
		if gotCode == code && gotBody == body {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("health port: got %d %q; want %d %q", gotCode, gotBody, code, body)
}

func newDBNode(t *testing.T, o testenv.NodeOptions) (*testenv.Postgres, *testenv.Node) {
	db := testenv.NewPostgres(t, testenv.PostgresOptions{})
	o.DB = db
	if o.LBAgentINI == "" {
		o.LBAgentINI = fastINI
	}
	return db, testenv.NewNode(t, o)
}

func TestHealthyNodeAnswersEveryMethodAndPath(t *testing.T) {
	_, node := newDBNode(t, testenv.NodeOptions{Role: "master"})
	r := startAgent(t, node)
	r.waitHealth(200, "")
	for _, m := range []string{"GET", "OPTIONS", "HEAD", "POST", "PUT"} {
		for _, p := range []string{"/", "/anything", "/health?x=1"} {
			if code, body := httpDo(t, m, "http://"+r.health+p); code != 200 || body != "" {
				t.Errorf("%s %s: got %d %q; want 200 and an empty body", m, p, code, body)
			}
		}
	}
}

func TestEachFaultGivesXRoadsMessageAndClears(t *testing.T) {
	_, node := newDBNode(t, testenv.NodeOptions{Role: "slave"})
	r := startAgent(t, node)
	r.waitHealth(200, "")
	tests := []struct {
		fault testenv.Fault
		want  string
	}{
		{testenv.FaultGlobalConfExpired, "Global configuration is expired"},
		{testenv.FaultSharedParamsMissing, "Global configuration is expired"},
		{testenv.FaultNoAuthKey, "No authentication key available. Signer might be down."},
		{testenv.FaultCertInactive, "No authentication key available. Signer might be down."},
		{testenv.FaultCertUnregistered, "No authentication key available. Signer might be down."},
		{testenv.FaultCertGarbled, "No end entity certificate available for authentication key."},
		{testenv.FaultOCSPMissing, "Getting OCSP response for authentication key failed."},
		{testenv.FaultOCSPUnsuccessful, "Authentication key OCSP response status 2"},
		{testenv.FaultOCSPRevoked, "No authentication key available. Signer might be down."},
		{testenv.FaultOCSPNextUpdate, "No authentication key available. Signer might be down."},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault), func(t *testing.T) {
			r.t = t
			if err := node.Break(tt.fault); err != nil {
				t.Fatal(err)
			}
			r.waitHealth(500, tt.want+"\n")
			if err := node.Fix(tt.fault); err != nil {
				t.Fatal(err)
			}
			r.waitHealth(200, "")
		})
	}
}

func TestFirstFailureInXRoadOrder(t *testing.T) {
	db, node := newDBNode(t, testenv.NodeOptions{Faults: []testenv.Fault{testenv.FaultOCSPMissing}})
	r := startAgent(t, node)
	r.waitHealth(500, "Getting OCSP response for authentication key failed.\n")
	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := node.Break(testenv.FaultGlobalConfExpired); err != nil {
		t.Fatal(err)
	}
	r.waitHealth(500, "Global configuration is expired\n")
	// /status shows all three failures, not only the first.
	st := r.status()
	for name, want := range map[string]string{
		xroadcheck.NameGlobalConf: "Global configuration is expired",
		xroadcheck.NameAuthKey:    "Getting OCSP response for authentication key failed.",
		xroadcheck.NameServerConf: "ServerConf is not available",
	} {
		r.waitCheck(name, "fail", want)
	}
	if st.Status != "fail" || st.Role != "standalone" {
		t.Errorf("status %q role %q; want fail standalone", st.Status, st.Role)
	}
}

func (r *running) status() healthport.Status {
	r.t.Helper()
	_, body := httpDo(r.t, "GET", "http://"+r.health+"/status")
	var st healthport.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		r.t.Fatalf("/status: %v\n%s", err, body)
	}
	return st
}

func (r *running) waitCheck(name, status, output string) healthport.CheckStatus {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got healthport.CheckStatus
	for time.Now().Before(deadline) {
		st := r.status()
		if cs, ok := st.Checks[name]; ok && len(cs) == 1 {
			got = cs[0]
			if got.Status == status && got.Output == output {
				return got
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("check %q: got %s %q; want %s %q", name, got.Status, got.Output, status, output)
	return got
}

func TestDatabaseStoppedThenBack(t *testing.T) {
	db, node := newDBNode(t, testenv.NodeOptions{})
	r := startAgent(t, node)
	r.waitHealth(200, "")
	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	r.waitHealth(500, "ServerConf is not available\n")
	if err := db.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitHealth(200, "")
}

func TestDatabaseFrozenTimesOutWhileOtherChecksKeepTheirSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("takes the real 5 s check timeout")
	}
	// Default check timeout (5 s); other checks rerun every 100 ms.
	db, node := newDBNode(t, testenv.NodeOptions{LBAgentINI: "[lbagent]\nsuccess-ttl = 100ms\nfailure-ttl = 30s\n"})
	r := startAgent(t, node)
	r.waitHealth(200, "")
	if err := db.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer db.Thaw()
	frozen := time.Now()
	before := r.status().Checks[xroadcheck.NameGlobalConf][0].Runs
	r.waitHealth(500, "Fetching health check response timed out for: Server conf database status\n")
	took := time.Since(frozen)
	after := r.status().Checks[xroadcheck.NameGlobalConf][0].Runs
	// The timeout is measured from the start of the hung run, which began within 100 ms
	// after the freeze: so between ~4.9 s and a little over 5 s.
	if took < 4*time.Second || took > 8*time.Second {
		t.Errorf("timeout reported %v after the freeze; want about 5 s", took)
	}
	// Global conf validity kept running every ~100 ms while the DB check hung.
	if after-before < 20 {
		t.Errorf("global conf check ran %d times during the %v hang; want it to keep its own schedule", after-before, took)
	}
	if got := r.status().Checks[xroadcheck.NameGlobalConf][0].Status; got != "pass" {
		t.Errorf("global conf check %s; want pass", got)
	}
}

func TestMaintenanceModeOverridesChecks(t *testing.T) {
	db, node := newDBNode(t, testenv.NodeOptions{})
	r := startAgent(t, node)
	r.waitHealth(200, "")
	admin := "http://" + r.admin
	tests := []struct{ query, want string }{
		{"/maintenance?targetState=true", "Maintenance mode set: false => true\n"},
		{"/maintenance?targetState=TRUE", "Maintenance mode set: true => true\n"},
		{"/maintenance?targetState=maybe", "Invalid parameter 'targetState', request ignored\n"},
		{"/maintenance", "Invalid parameter 'targetState', request ignored\n"},
	}
	for _, tt := range tests {
		if code, body := httpDo(t, "GET", admin+tt.query); code != 200 || body != tt.want {
			t.Errorf("GET %s: got %d %q; want 200 %q", tt.query, code, body, tt.want)
		}
	}
	r.waitHealth(503, "Health check interface is in maintenance mode.\n")
	if err := db.Stop(); err != nil { // a failing check does not change the maintenance answer
		t.Fatal(err)
	}
	r.waitCheck(xroadcheck.NameServerConf, "fail", "ServerConf is not available")
	if code, body := httpDo(t, "GET", "http://"+r.health+"/"); code != 503 || body != "Health check interface is in maintenance mode.\n" {
		t.Errorf("in maintenance with a failing check: got %d %q; want 503", code, body)
	}
	// GET only: X-Road's own client uses GET, and a HEAD or DELETE must not switch anything.
	for _, m := range []string{"POST", "HEAD", "DELETE", "PUT"} {
		if code, _ := httpDo(t, m, admin+"/maintenance?targetState=false"); code != 405 {
			t.Errorf("%s /maintenance: got %d; want 405", m, code)
		}
	}
	if !r.status().Maintenance {
		t.Error("another method than GET switched maintenance off")
	}
	if code, body := httpDo(t, "GET", admin+"/maintenance?targetState=false"); code != 200 || body != "Maintenance mode set: true => false\n" {
		t.Errorf("switch off: got %d %q", code, body)
	}
	r.waitHealth(500, "ServerConf is not available\n")
	if code, body := httpDo(t, "GET", admin+"/other"); code != 404 || body != "" {
		t.Errorf("unknown path: got %d %q; want 404 empty", code, body)
	}
}

func TestAdminPortTakesAnyLoopbackPeer(t *testing.T) {
	_, node := newDBNode(t, testenv.NodeOptions{})
	a := startAgentOn(t, node, "0.0.0.0:0").agent
	_, port, _ := net.SplitHostPort(a.AdminAddr())
	// Any loopback address is local (127.0.0.0/8): 127.0.0.2 may switch. Peers outside
	// loopback are refused in adminport's own tests (no traffic leaves loopback here).
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%s/maintenance?targetState=true", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "Maintenance mode set: false => true\n" {
		t.Errorf("from 127.0.0.2: got %d %q; want X-Road's answer", resp.StatusCode, b)
	}
	if !a.Store().Maintenance() {
		t.Error("maintenance was not switched by a loopback peer")
	}
}

func TestHealthPortDisabledRefusesMaintenance(t *testing.T) {
	_, node := newDBNode(t, testenv.NodeOptions{HealthPort: -1})
	r := startAgent(t, node)
	if r.health != "" {
		t.Fatalf("health port listening on %s; want disabled", r.health)
	}
	code, body := httpDo(t, "GET", "http://"+r.admin+"/maintenance?targetState=true")
	if code != 200 || body != "No HealthCheckPort found, maintenance mode not set\n" {
		t.Errorf("got %d %q; want X-Road's refusal", code, body)
	}
}

func TestMetricsAndStatusDocument(t *testing.T) {
	_, node := newDBNode(t, testenv.NodeOptions{Role: "master"})
	r := startAgent(t, node)
	r.waitHealth(200, "")
	st := r.status()
	if st.Status != "pass" || st.State != "healthy" || st.Role != "primary" || len(st.Order) != 3 {
		t.Errorf("status %+v; want pass, healthy, primary, 3 checks", st)
	}
	want := []string{xroadcheck.NameGlobalConf, xroadcheck.NameAuthKey, xroadcheck.NameServerConf}
	if strings.Join(st.Order, "|") != strings.Join(want, "|") {
		t.Errorf("check order %q; want X-Road's %q", st.Order, want)
	}
	code, body := httpDo(t, "GET", "http://"+r.health+"/metrics")
	for _, s := range []string{"lbagent_healthy 1", `lbagent_check_up{check="Server conf database status",severity="critical"} 1`, "lbagent_maintenance 0"} {
		if code != 200 || !strings.Contains(body, s) {
			t.Errorf("/metrics: want %q in\n%s", s, body)
		}
	}
}

func TestServerConfFollowsDBPropertiesAndKeepsLastGood(t *testing.T) {
	db, node := newDBNode(t, testenv.NodeOptions{})
	r := startAgent(t, node)
	r.waitHealth(200, "")
	ctx := context.Background()
	props := node.XRoadDir + "/db.properties"
	good, err := os.ReadFile(props)
	if err != nil {
		t.Fatal(err)
	}
	reconnect := func() {
		t.Helper()
		if err := db.Stop(); err != nil {
			t.Fatal(err)
		}
		r.waitHealth(500, "ServerConf is not available\n")
		if err := db.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A malformed db.properties: the check reconnects with the last good settings.
	if err := os.WriteFile(props, []byte("serverconf.hibernate.connection.url = jdbc:mysql://nowhere/db\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	reconnect()
	r.waitHealth(200, "")
	// A new password in the database and in db.properties: the next connection uses it.
	if err := db.Exec(ctx, "postgres", "ALTER ROLE serverconf PASSWORD 'rotated-pw'"); err != nil {
		t.Fatal(err)
	}
	rotated := strings.Replace(string(good), "password = "+node.DBPassword, "password = rotated-pw", 1)
	if rotated == string(good) {
		t.Fatal("test setup: password line not found in db.properties")
	}
	if err := os.WriteFile(props, []byte(rotated), 0o640); err != nil {
		t.Fatal(err)
	}
	reconnect()
	r.waitHealth(200, "")
}

func TestRunReturnsWhenAServiceFailsAtOnce(t *testing.T) {
	_, node := newDBNode(t, testenv.NodeOptions{})
	for i := 0; i < 20; i++ { // the failure races the servers' start; try it many times
		cfg, err := LoadConfig(Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir, AdminListen: "127.0.0.1:0",
			HealthListen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(cfg, zerolog.New(io.Discard))
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("listen 127.0.0.1:5589: address already in use")
		if err := a.Add(Component{Name: "agent-check", Run: func(context.Context) error { return boom }}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.Run(context.Background()) }()
		select {
		case err := <-done:
			if !errors.Is(err, boom) {
				t.Fatalf("Run returned %v; want the service's error", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Run did not return after a service failed", i)
		}
	}
}

// TestAdminPortOnIPv6Loopback: with --admin-listen [::1]:PORT the admin port takes its
// clients (::1 is loopback), and its /status is the full document.
func TestAdminPortOnIPv6Loopback(t *testing.T) {
	_, node := newDBNode(t, testenv.NodeOptions{})
	a := startAgentOn(t, node, "[::1]:0").agent
	if code, body := httpDo(t, "GET", "http://"+a.AdminAddr()+"/maintenance?targetState=true"); code != 200 || body != "Maintenance mode set: false => true\n" {
		t.Fatalf("from ::1: got %d %q; want X-Road's answer", code, body)
	}
	code, body := httpDo(t, "GET", "http://"+a.AdminAddr()+"/status")
	if code != 503 || !strings.Contains(body, `"maintenance": true`) || !strings.Contains(body, `"checks"`) {
		t.Fatalf("admin /status: %d %s", code, body)
	}
}

// TestRunStopsWhenManyHealthListenersFail: with one health listener per CPU (max-procs = 0 on
// a large machine) every accept loop may end at once; Run must stop with an error naming the
// health port instead of hanging or serving on without it.
func TestRunStopsWhenManyHealthListenersFail(t *testing.T) {
	node := testenv.NewNode(t, testenv.NodeOptions{})
	cfg, err := LoadConfig(Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir, AdminListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	for len(a.healthLns) < 64 { // as many accept loops as a 64-CPU machine runs
		ln, err := reuseport.Listen("tcp4", a.HealthAddr())
		if err != nil {
			t.Fatal(err)
		}
		a.healthLns = append(a.healthLns, ln)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	// Wait until the health port answers (the accept loops run), then end them all at once.
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", a.HealthAddr())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	closeAll(a.healthLns)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "health port") {
			t.Fatalf("Run returned %v; want an error naming the health port", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after every health listener failed")
	}
}

// waitFor polls cond until it holds, or fails the test after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 20 s")
}

// TestConcurrentMaintenanceSwitchesKeepTheStateFileInStep: switches racing through the admin
// port leave the state file with the value in memory (bug 2).
func TestConcurrentMaintenanceSwitchesKeepTheStateFileInStep(t *testing.T) {
	node := testenv.NewNode(t, testenv.NodeOptions{})
	state := t.TempDir() + "/maintenance"
	a := startAgentWith(t, node, Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir, AdminListen: "127.0.0.1:0",
		MaintenanceStateFile: state}).agent
	client := &http.Client{Timeout: 10 * time.Second}
	for round := 0; round < 5; round++ {
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			go func() {
				resp, err := client.Get(fmt.Sprintf("http://%s/maintenance?targetState=%t", a.AdminAddr(), i%2 == 0))
				if err == nil {
					resp.Body.Close()
				}
				errs <- err
			}()
		}
		for i := 0; i < 16; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%t\n", a.Store().Maintenance()); string(b) != want {
			t.Fatalf("round %d: state file %q, memory %q; want the same", round, b, want)
		}
	}
}

// TestComponentFaces: one Component shows every face: its check after X-Road's, its Setup
// before the checks and the worker run, its status, collector, /lb line and worker.
func TestComponentFaces(t *testing.T) {
	node := testenv.NewNode(t, testenv.NodeOptions{})
	cfg, err := LoadConfig(Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir, AdminListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	var order []string // Setup, then the check's and worker's first runs
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); defer mu.Unlock(); order = append(order, s) }
	ran := make(chan struct{})
	runs := prometheus.NewCounter(prometheus.CounterOpts{Name: "lbagent_test_component_runs_total", Help: "Runs."})
	runs.Add(3)
	c := Component{
		Name:   "part",
		Checks: []check.Spec{{Name: "Part status", Severity: check.Warning, Run: func(context.Context) error { note("check"); return check.Fail("part is degraded", nil) }}},
		Setup:  func() error { note("setup"); return nil },
		Run: func(ctx context.Context) error {
			note("run")
			close(ran)
			<-ctx.Done()
			return nil
		},
		Status:     func() any { return map[string]any{"phase": "steady"} },
		Collectors: []prometheus.Collector{runs},
		LBLine:     func(peer string) []byte { return []byte("up 50%\n") },
	}
	if err := a.Add(c); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		c    Component
		want string
	}{
		{"same name", Component{Name: "part"}, "component part: added twice"},
		{"second /lb", Component{Name: "other", LBLine: c.LBLine}, "component other: /lb is served by part already"},
	} {
		if err := a.Add(tt.c); err == nil || err.Error() != tt.want {
			t.Errorf("%s: Add = %v; want %q", tt.name, err, tt.want)
		}
	}
	r := &running{t: t, agent: a}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(Component{Name: "late"}); err == nil || err.Error() != "component late: added after Listen" {
		t.Errorf("Add after Listen = %v; want an error", err)
	}
	r.health, r.admin = a.HealthAddr(), a.AdminAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-ran
	r.waitCheck("Part status", "warn", "part is degraded")
	mu.Lock()
	if order[0] != "setup" {
		t.Errorf("order %v; want setup first", order)
	}
	mu.Unlock()
	st := r.status()
	if got := st.Order[len(st.Order)-1]; got != "Part status" || st.Order[0] != xroadcheck.NameGlobalConf {
		t.Errorf("check order %v; want X-Road's first and the component's last", st.Order)
	}
	if _, body := httpDo(t, "GET", "http://"+r.admin+"/status"); !strings.Contains(body, `"part": {`) || !strings.Contains(body, `"phase": "steady"`) {
		t.Errorf("admin /status lacks the component's document:\n%s", body)
	}
	if code, body := httpDo(t, "GET", "http://"+r.health+"/lb"); code != 200 || body != "up 50%\n" {
		t.Errorf("/lb: got %d %q; want the component's line", code, body)
	}
	if _, body := httpDo(t, "GET", "http://"+r.health+"/metrics"); !strings.Contains(body, "lbagent_test_component_runs_total 3\n") {
		t.Errorf("/metrics lacks the component's collector:\n%s", body)
	}
}
