package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/xroadcheck"
	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/attack"
)

// TestAttacks runs each attack on the node's open ports against a real lbagent on loopback
// (docs/security.md), bounded in count and time. The balancer probes from 127.0.0.1, the
// only address in [agent-check] balancers; the attackers come from other 127.0.x.y addresses.
func TestAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and lbagent processes")
	}
	bin, err := testenv.BuildLBAgent(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.NewPostgres(t, testenv.PostgresOptions{})

	// ~20,000 idle connections used to stop the daemon: fasthttp treated EMFILE from accept
	// as fatal. With the descriptor limit at 1024 and caps set above it (lbagent warns), accept
	// runs out of descriptors, backs off, frees the oldest idle connection and goes on. While
	// descriptors are short a check may fail to open its files (so a short failure TTL): the
	// port must answer all the same, and be healthy again once the flood is gone.
	t.Run("descriptor exhaustion", func(t *testing.T) {
		a := startAttackAgent(t, bin, db, agentOpts{nofile: 1024,
			lbagent: "max-connections = 4000\nmax-connections-per-ip = 4000\nfailure-ttl = 1s"}, true)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		flood := attack.IdleFlood(ctx, a.health, 2000, attack.Sources(10, 100))
		defer flood.Close()
		// The health port accepts with TCP_DEFER_ACCEPT: silent connections wait in the
		// kernel for a second or so before they are handed over and take descriptors.
		for a.fds() < 1000 && ctx.Err() == nil {
			a.alive(t)
			time.Sleep(50 * time.Millisecond)
		}
		a.alive(t)
		// While the flood holds every descriptor, the balancer's probes still get through.
		probes := attack.Probes(ctx, 10, 50*time.Millisecond, func(ctx context.Context) attack.Probe {
			return attack.HTTPProbe(ctx, balancer, a.health, "/")
		})
		for i, p := range probes {
			if p.Err != nil || (p.Code != 200 && p.Code != 500) {
				t.Errorf("probe #%d during the flood: %d %q %v; want X-Road's answer", i, p.Code, p.Body, p.Err)
			}
		}
		if !strings.Contains(strings.Join(a.logLines(t), "\n"), "max-connections is above what the open-file limit leaves") {
			t.Error("no warning about max-connections above the descriptor budget")
		}
		if n := a.metric(t, "lbagent_accept_errors_total"); n == 0 {
			t.Errorf("no failed accept counted: the flood of %d (%d failed to connect) did not exhaust 1024 descriptors (%d open)",
				flood.Len(), flood.Failed.Load(), a.fds())
		}
		flood.Close()
		a.healthyAfter(t)
	})

	// With the default caps (sized from RLIMIT_NOFILE) the flood never reaches the limit:
	// per-IP caps refuse the excess and the oldest idle connections make room.
	t.Run("connection flood with default caps", func(t *testing.T) {
		a := startAttackAgent(t, bin, db, agentOpts{nofile: 1024}, true)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		flood := attack.IdleFlood(ctx, a.health, 2000, attack.Sources(10, 100))
		defer flood.Close()
		agentFlood := attack.NonReaders(ctx, a.agentPort, 500, attack.Sources(300, 10))
		defer agentFlood.Close()
		probes := attack.Probes(ctx, 10, 50*time.Millisecond, func(ctx context.Context) attack.Probe {
			return attack.HTTPProbe(ctx, balancer, a.health, "/")
		})
		if bad := attack.Failures(probes, 200, ""); bad != "" {
			t.Errorf("probes during the flood: %s", bad)
		}
		lines := attack.Probes(ctx, 10, 50*time.Millisecond, func(ctx context.Context) attack.Probe {
			p := attack.AgentProbe(ctx, balancer, a.agentPort)
			p.Code = 200
			return p
		})
		if bad := attack.Failures(lines, 200, "up\n"); bad != "" {
			t.Errorf("agent-check during the flood: %s", bad)
		}
		if a.metric(t, `lbagent_connections_refused_total{reason="per_ip"}`) == 0 || a.metric(t, "lbagent_connections_evicted_total") == 0 {
			t.Errorf("the flood met neither the per-IP cap nor the global one")
		}
		flood.Close()
		agentFlood.Close()
		a.healthyAfter(t)
	})

	// Slow clients (a byte of request head every 100 ms) are closed by the read timeout and
	// never hold the probes up.
	t.Run("slow clients", func(t *testing.T) {
		a := startAttackAgent(t, bin, db, agentOpts{lbagent: "read-timeout = 1s"}, true)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		closed := make(chan int64, 1)
		go func() { closed <- attack.Slow(ctx, a.health, 100, 100*time.Millisecond, attack.Sources(10, 10)) }()
		probes := attack.Probes(ctx, 20, 50*time.Millisecond, func(ctx context.Context) attack.Probe {
			return attack.HTTPProbe(ctx, balancer, a.health, "/")
		})
		if bad := attack.Failures(probes, 200, ""); bad != "" {
			t.Errorf("probes among slow clients: %s", bad)
		}
		if n := <-closed; n != 100 || ctx.Err() != nil {
			t.Errorf("the server closed %d of 100 slow clients before the test's deadline; want all, by the read timeout", n)
		}
		a.healthyAfter(t)
	})

	// 400 POSTs of 4 MB used to take RSS to 1.67 GB: bodies are refused unread.
	t.Run("large bodies", func(t *testing.T) {
		a := startAttackAgent(t, bin, db, agentOpts{}, true)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		codes := attack.Bodies(ctx, a.health, 100, 4<<20, 10, attack.Sources(10, 10))
		for i, c := range codes {
			if c != 413 && c != 0 {
				t.Errorf("POST #%d with 4 MB: %d; want 413 (or the connection closed)", i, c)
				break
			}
		}
		rss := a.rssMB(t)
		if rss > 64 {
			t.Errorf("RSS %.1f MiB after 100 × 4 MB bodies; want under 64", rss)
		}
		t.Logf("RSS %.1f MiB after 100 × 4 MB bodies", rss)
		a.healthyAfter(t)
	})

	// 20,000 garbage requests used to write 224 MB of plain-text log lines.
	t.Run("malformed requests", func(t *testing.T) {
		a := startAttackAgent(t, bin, db, agentOpts{}, true)
		before := len(a.logLines(t))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		attack.Malformed(ctx, a.health, 5000, 32, attack.Sources(10, 20))
		a.healthyAfter(t)
		lines := a.logLines(t)
		if n := len(lines) - before; n >= 100 {
			t.Errorf("5000 malformed requests wrote %d log lines; want under 100", n)
		} else {
			t.Logf("5000 malformed requests wrote %d log lines", n)
		}
		for _, l := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(l), &obj); err != nil {
				t.Errorf("log line is not one JSON object: %q", l)
				break
			}
		}
		if n := a.metric(t, "lbagent_http_errors_total"); n < 1000 {
			t.Errorf("lbagent_http_errors_total %v; want the bad requests counted", n)
		}
	})

	// Pipelining from 200 connections and churning agent-check clients used to delay probes
	// past HAProxy's inter. Probes must get their right answer (their latency is in make bench).
	t.Run("pipelining and agent-check churn", func(t *testing.T) {
		a := startAttackAgent(t, bin, db, agentOpts{}, true)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		actx, stop := context.WithTimeout(ctx, 3*time.Second)
		defer stop()
		done := make(chan struct{}, 2)
		go func() { attack.Pipeline(actx, a.health, 200, attack.Sources(10, 20)); done <- struct{}{} }()
		go func() { attack.AgentChurn(actx, a.agentPort, 200, attack.Sources(40, 20)); done <- struct{}{} }()
		var probes, lines []attack.Probe
		for actx.Err() == nil {
			probes = append(probes, attack.HTTPProbe(ctx, balancer, a.health, "/"))
			l := attack.AgentProbe(ctx, balancer, a.agentPort)
			l.Code = 200
			lines = append(lines, l)
			time.Sleep(20 * time.Millisecond)
		}
		<-done
		<-done
		if bad := attack.Failures(probes, 200, ""); bad != "" {
			t.Errorf("health probes under pipelining: %s", bad)
		}
		if bad := attack.Failures(lines, 200, "up\n"); bad != "" {
			t.Errorf("agent-check under churn: %s", bad)
		}
		t.Logf("%d health probes p50 %v p99 %v; %d agent-check reads p50 %v p99 %v", len(probes),
			attack.Percentile(probes, 50), attack.Percentile(probes, 99), len(lines), attack.Percentile(lines, 50), attack.Percentile(lines, 99))
		a.healthyAfter(t)
	})

	// keyconf.xml replaced by a FIFO used to block the check's read forever: the node stayed
	// 500 until restarted. Non-regular files are refused, so the node recovers at the first
	// run after the file is back: within check-timeout + failure-ttl.
	t.Run("FIFO keyconf", func(t *testing.T) {
		a := startAttackAgent(t, bin, db, agentOpts{lbagent: "check-timeout = 1s\nfailure-ttl = 2s"}, true)
		keyconf := filepath.Join(a.node.XRoadDir, "signer", "keyconf.xml")
		if err := os.Remove(keyconf); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(keyconf, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var st map[string]any
		for ctx.Err() == nil {
			if _, st = a.adminStatus(t); checkOf(st, xroadcheck.NameAuthKey)["status"] == "fail" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		c := checkOf(st, xroadcheck.NameAuthKey)
		if c["status"] != "fail" || !strings.Contains(c["detail"].(string), "not a regular file") {
			t.Fatalf("with a FIFO keyconf: %v; want a failure naming the FIFO", c)
		}
		runsAtFix := c["runs"].(float64)
		if err := os.Remove(keyconf); err != nil {
			t.Fatal(err)
		}
		fixed := time.Now()
		if err := a.node.Fix(testenv.FaultNoAuthKey); err != nil { // rewrites keyconf.xml
			t.Fatal(err)
		}
		for ctx.Err() == nil {
			if p := attack.HTTPProbe(ctx, balancer, a.health, "/"); p.Code == 200 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(fixed)
		_, st = a.adminStatus(t)
		c = checkOf(st, xroadcheck.NameAuthKey)
		// The first or second run after the fix passes (one may have been under way).
		if c["status"] != "pass" || c["runs"].(float64) > runsAtFix+2 {
			t.Errorf("after the fix: %v (runs at the fix %v); want a pass at the next run", c, runsAtFix)
		}
		if limit := 3*time.Second + 2*time.Second; took > limit { // check-timeout + failure-ttl, and slack for a busy machine
			t.Errorf("healthy %v after the file was back; want within check-timeout + failure-ttl (3s)", took)
		}
		if abandoned := a.metric(t, `lbagent_check_abandoned_runs{check="Authentication key OCSP status"}`); abandoned != 0 {
			t.Errorf("%v runs abandoned: the FIFO was opened", abandoned)
		}
	})

	// /lb from an address that is not a listed balancer never takes a "ready", and /lb from
	// the balancer's own address does not take the one its agent-check is owed.
	t.Run("ready only for the balancer", func(t *testing.T) {
		a := startAttackAgent(t, bin, db, agentOpts{}, true)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		setMaint := func(on string) {
			t.Helper()
			if p := attack.HTTPProbe(ctx, "127.0.0.1", a.admin, "/maintenance?targetState="+on); p.Code != 200 {
				t.Fatalf("maintenance %s: %d %v", on, p.Code, p.Err)
			}
		}
		lb := func(from string) string {
			t.Helper()
			p := attack.HTTPProbe(ctx, from, a.health, "/lb")
			if p.Err != nil {
				t.Fatal(p.Err)
			}
			return p.Body
		}
		setMaint("true")
		if got := attack.AgentProbe(ctx, balancer, a.agentPort).Body; got != "drain\n" {
			t.Fatalf("balancer's agent-check in maintenance: %q", got)
		}
		for _, from := range []string{"127.0.0.7", balancer} {
			if got := lb(from); got != "drain\n" {
				t.Fatalf("/lb from %s in maintenance: %q", from, got)
			}
		}
		setMaint("false")
		for _, step := range []struct{ from, want string }{
			{"127.0.0.7", "up\n"}, {"127.0.0.7", "up\n"}, // not a balancer: never "ready"
			{balancer, "up ready\n"}, {balancer, "up\n"}, // its own /lb "ready", once
		} {
			if got := lb(step.from); got != step.want {
				t.Errorf("/lb from %s: %q; want %q", step.from, got, step.want)
			}
		}
		if got := attack.AgentProbe(ctx, balancer, a.agentPort).Body; got != "up ready\n" {
			t.Errorf("balancer's agent-check after the /lb reads: %q; want its ready", got)
		}
	})

	// Hostile serverconf passwords (quotes, spaces, backslashes, "password=" inside) never
	// show in /status, /metrics or the log, also when pgx cannot parse the settings.
	t.Run("hostile passwords", func(t *testing.T) {
		for _, pw := range []string{`Qz'9 Xk"7 password=Wq3 Lm\8`, `'Rt5 Uv6'`, `Nb\'4 Hj\\2 Pp0`} {
			a := startAttackAgent(t, bin, db, agentOpts{node: func(n *testenv.Node) {
				writeDBProperties(t, n, db, pw)
			}}, false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var full string
			var st map[string]any
			for ctx.Err() == nil {
				if full, st = a.adminStatus(t); checkOf(st, xroadcheck.NameServerConf)["status"] == "fail" {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			if c := checkOf(st, xroadcheck.NameServerConf); c["status"] != "fail" || !strings.Contains(c["detail"].(string), "cannot parse") {
				t.Fatalf("password %q: serverconf check %v; want pgx's parse failure", pw, c)
			}
			public := attack.HTTPProbe(context.Background(), balancer, a.health, "/status").Body
			metrics := attack.HTTPProbe(context.Background(), balancer, a.health, "/metrics").Body
			logs := strings.Join(a.logLines(t), "\n")
			for _, part := range strings.Fields(pw) {
				if len(part) < 3 {
					continue
				}
				for name, out := range map[string]string{"admin /status": full, "public /status": public, "/metrics": metrics, "log": logs} {
					for _, form := range []string{part, strings.ReplaceAll(strings.ReplaceAll(part, `\`, `\\`), `"`, `\"`)} {
						if strings.Contains(out, form) {
							t.Errorf("password %q: %q shows in %s", pw, form, name)
						}
					}
				}
			}
		}
	})
}

// writeDBProperties points the node's serverconf at db with password pw and an sslmode that
// pgx refuses, so the connection settings fail to parse (the path where pgx quotes them).
func writeDBProperties(t *testing.T, n *testenv.Node, db *testenv.Postgres, pw string) {
	t.Helper()
	esc := strings.NewReplacer(`\`, `\\`).Replace(pw) // Java properties escape
	props := "serverconf.hibernate.connection.url = jdbc:postgresql://" + db.Addr() + "/serverconf?sslmode=bogus\n" +
		"serverconf.hibernate.connection.username = serverconf\n" +
		"serverconf.hibernate.connection.password = " + esc + "\n"
	if err := os.WriteFile(filepath.Join(n.XRoadDir, "db.properties"), []byte(props), 0o640); err != nil {
		t.Fatal(err)
	}
}
