package db

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xroad-lb/lbkit/db/certs"
	"github.com/xroad-lb/lbkit/testenv"
)

// cluster is a primary and a standby built by SetupPrimary and SetupSecondary.
type cluster struct {
	primary, standby *testenv.Postgres
	certDir          string
	node             func(name string) (ca, cert, key string)
}

func pgBin(t *testing.T) string {
	t.Helper()
	d, err := testenv.PostgresBinDir()
	if err != nil {
		testenv.Require(t, "initdb", "/usr/lib/postgresql/15/bin")
	}
	testenv.Require(t, "pg_basebackup", d)
	return d
}

// issue writes a CA and node certificates readable by the server user.
func issue(t *testing.T, dir string, names ...string) func(string) (string, string, string) {
	t.Helper()
	uid, gid, chown, err := testenv.PostgresOwner()
	if err != nil {
		t.Fatal(err)
	}
	opts := certs.Options{Chown: chown, UID: uid, GID: gid}
	if _, _, err := certs.WriteCA(filepath.Join(dir), opts); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := certs.WriteNode(dir, filepath.Join(dir, n), n, opts); err != nil {
			t.Fatal(err)
		}
	}
	return func(n string) (string, string, string) {
		return filepath.Join(dir, n, certs.CACertFile), filepath.Join(dir, n, certs.NodeCertFile), filepath.Join(dir, n, certs.NodeKeyFile)
	}
}

func superConn(p *testenv.Postgres) Conn {
	return Conn{Host: p.Host, Port: p.Port, User: "postgres", Password: p.Password, DBName: "postgres", SSLMode: "disable"}
}

func connect(t *testing.T, c Conn) *pgx.Conn {
	t.Helper()
	conn, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func secondaryOpts(p *testenv.Postgres, dataDir, name string, node func(string) (string, string, string), bin string) SecondaryOptions {
	ca, cert, key := node(name)
	return SecondaryOptions{
		DataDir: dataDir, BinDir: bin, RunAs: testenv.PostgresUser(), ListenAddresses: "127.0.0.1",
		Primary: Conn{Host: p.Host, Port: p.Port, User: name, CAFile: ca, CertFile: cert, KeyFile: key},
	}
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	bin := pgBin(t)
	ctx := context.Background()
	shared := testenv.SharedDir(t)
	node := issue(t, filepath.Join(shared, "certs"), "primary", "replica1", "intruder", "serverconf")
	primary := testenv.NewPostgres(t, testenv.PostgresOptions{})
	ca, cert, key := node("primary")
	popts := PrimaryOptions{CAFile: ca, CertFile: cert, KeyFile: key, ListenAddresses: primary.Host,
		Replicas: []string{"replica1"}, ServerconfPassword: "serverconf-secret"}
	res, err := SetupPrimary(ctx, superConn(primary), popts)
	if err != nil {
		t.Fatalf("setup primary: %v\n%s", err, primary.Log(20))
	}
	if len(res.Changed) == 0 {
		t.Fatalf("first setup primary changed nothing: %+v", res)
	}
	// The primary now speaks TLS with the cluster's CA (the reload is asynchronous).
	tlsConn := superConn(primary)
	tlsConn.SSLMode, tlsConn.CAFile = "verify-ca", ca
	eventually(t, "TLS connection to the primary", 10*time.Second, func() error {
		c, err := tlsConn.Connect(ctx)
		if err == nil {
			_ = c.Close(ctx)
		}
		return err
	})
	if err := primary.Exec(ctx, "postgres", "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(shared, "standby")
	if _, err := SetupSecondary(ctx, secondaryOpts(primary, dataDir, "replica1", node, bin)); err != nil {
		t.Fatalf("setup secondary: %v\n%s", err, primary.Log(20))
	}
	standby := testenv.NewPostgres(t, testenv.PostgresOptions{DataDir: dataDir})
	return &cluster{primary: primary, standby: standby, certDir: shared, node: node}
}

func TestReplication(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	bin := pgBin(t)
	ca, cert, key := c.node("primary")

	t.Run("second setup is a no-op", func(t *testing.T) {
		res, err := SetupPrimary(ctx, superConn(c.primary), PrimaryOptions{CAFile: ca, CertFile: cert, KeyFile: key,
			ListenAddresses: c.primary.Host, Replicas: []string{"replica1"}, ServerconfPassword: "serverconf-secret"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changed) != 0 {
			t.Errorf("second setup primary changed %q; want nothing", res.Changed)
		}
		dataDir := c.standby.DataDir
		if err := c.standby.Stop(); err != nil {
			t.Fatal(err)
		}
		res, err = SetupSecondary(ctx, secondaryOpts(c.primary, dataDir, "replica1", c.node, bin))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changed) != 0 {
			t.Errorf("second setup secondary changed %q; want nothing", res.Changed)
		}
		if err := c.standby.Start(ctx); err != nil {
			t.Fatal(err)
		}
	})

	sb := connect(t, superConn(c.standby))
	pr := connect(t, superConn(c.primary))
	count := func() int {
		var n int
		if err := sb.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("row written on the primary is read on the standby", func(t *testing.T) {
		if _, err := pr.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "row 2 on the standby", 20*time.Second, func() error {
			var n int
			if err := sb.QueryRow(ctx, "SELECT count(*) FROM t WHERE id = 2").Scan(&n); err != nil || n != 1 {
				return errors.Join(err, errors.New("row 2 not there"))
			}
			return nil
		})
	})

	t.Run("status on the primary lists the standby", func(t *testing.T) {
		eventually(t, "replica1 streaming", 20*time.Second, func() error {
			r, err := Status(ctx, pr)
			if err != nil {
				return err
			}
			if r.Role != "primary" || len(r.Replicas) != 1 || r.Replicas[0].Name != "replica1" ||
				r.Replicas[0].User != "replica1" || r.Replicas[0].State != "streaming" ||
				!r.Replicas[0].TLS || !strings.Contains(r.Replicas[0].ClientDN, "CN=replica1") {
				return errors.New("got " + mustJSON(r))
			}
			return nil
		})
	})

	t.Run("status on the standby", func(t *testing.T) {
		r, err := Status(ctx, sb)
		if err != nil {
			t.Fatal(err)
		}
		if r.Role != "standby" || r.Standby == nil || !r.Standby.Streaming || r.Standby.Paused ||
			r.Standby.SenderPort != c.primary.Port {
			t.Fatalf("got %s; want a streaming, unpaused standby of port %d", mustJSON(r), c.primary.Port)
		}
	})

	monitor := Conn{Host: c.standby.Host, Port: c.standby.Port, User: "serverconf", Password: "serverconf-secret",
		DBName: "postgres", SSLMode: "disable"}
	w := NewWatcher(monitor, Config{})
	defer w.Close()
	limited := NewWatcher(monitor, Config{LagLimit: LagLimit{Bytes: 1}})
	defer limited.Close()

	t.Run("watcher passes while streaming", func(t *testing.T) {
		eventually(t, "watcher check", 10*time.Second, func() error { return w.Check(ctx) })
		st := w.Status()
		if !st.Up || !st.Streaming || st.PauseState != "not paused" || st.Error != "" {
			t.Fatalf("got %s; want up, streaming, not paused (the monitor user may read the pause state)", mustJSON(st))
		}
	})

	t.Run("an interrupted pause is not reported as done", func(t *testing.T) {
		// Issue 12, bug 5. The startup process is stopped (SIGSTOP), so the standby stays at
		// "pause requested"; the context is cancelled while set waits for its first
		// confirmation poll (on a fake clock), as an operator's Ctrl-C or the end of issue 13's
		// SSH session would.
		var startup int
		if err := sb.QueryRow(ctx, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'").Scan(&startup); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(startup, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		cont := func() { _ = syscall.Kill(startup, syscall.SIGCONT) }
		defer cont()
		ictx, cancel := context.WithCancel(ctx)
		defer cancel()
		clock := clockwork.NewFakeClock()
		r := replay{clock: clock, confirm: time.Hour, poll: 20 * time.Millisecond}
		type result struct {
			s   *Standby
			err error
		}
		done := make(chan result, 1)
		waiting, stopWaiting := context.WithCancel(ctx)
		defer stopWaiting()
		go func() {
			s, err := r.set(ictx, sb, "pg_wal_replay_pause", "paused")
			done <- result{s, err}
			stopWaiting()
		}()
		if err := clock.BlockUntilContext(waiting, 1); err != nil { // set waits on its poll timer
			res := <-done
			t.Fatalf("set returned %v, %v before waiting for the standby's confirmation", res.s, res.err)
		}
		cancel()
		res := <-done
		s, err := res.s, res.err
		if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") ||
			!strings.Contains(err.Error(), "pause requested") {
			t.Errorf("interrupted pause: got %v, %v; want an error saying interrupted at \"pause requested\", wrapping context.Canceled", s, err)
		}
		cont()
		if _, err := Resume(ctx, sb); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pause stops replay, resume catches up", func(t *testing.T) {
		before := count()
		s, err := Pause(ctx, sb)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Paused {
			t.Fatalf("after Pause: %s; want paused", s)
		}
		if _, err := pr.Exec(ctx, "INSERT INTO t SELECT generate_series(100, 199)"); err != nil {
			t.Fatal(err)
		}
		var lag1 int64
		eventually(t, "WAL received but not replayed", 20*time.Second, func() error {
			if err := w.Check(ctx); err == nil || !strings.Contains(err.Error(), "paused") {
				return errors.New("watcher check: want a paused failure")
			}
			if lag1 = w.Status().LagBytes; lag1 == 0 {
				return errors.New("lag is 0")
			}
			return nil
		})
		if got := count(); got != before {
			t.Errorf("rows on the paused standby: got %d; want %d", got, before)
		}
		r, err := Status(ctx, sb)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Standby.Paused || r.Standby.PauseState != "paused" {
			t.Errorf("status while paused: %s; want paused", mustJSON(r.Standby))
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(w)
		got := gather(t, reg)
		if got["lbagent_replication_paused"] != 1 || got["lbagent_replication_lag_bytes"] <= 0 ||
			got["lbagent_replication_streaming"] != 1 || got["lbagent_replication_up"] != 1 {
			t.Errorf("metrics while paused: %v; want paused 1, streaming 1, up 1, lag_bytes > 0", got)
		}
		if err := limited.Check(ctx); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
			t.Errorf("lag-limited check while paused: got %v; want a lag failure", err)
		}
		// Writes continue: the lag in the watcher's status moves.
		if _, err := pr.Exec(ctx, "INSERT INTO t SELECT generate_series(200, 299)"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "lag grows", 20*time.Second, func() error {
			_ = w.Check(ctx)
			if got := w.Status().LagBytes; got <= lag1 {
				return errors.New("lag did not grow")
			}
			return nil
		})
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = WaitCaughtUp(wctx, sb, 100*time.Millisecond, nil)
		cancel()
		if !errors.Is(err, ErrPaused) {
			t.Errorf("wait-caught-up while paused: got %v; want ErrPaused", err)
		}

		if _, err := Resume(ctx, sb); err != nil {
			t.Fatal(err)
		}
		wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var progress int
		s, err = WaitCaughtUp(wctx, sb, 100*time.Millisecond, func(*Standby) { progress++ })
		if err != nil {
			t.Fatal(err)
		}
		if !s.CaughtUp || s.ReplayLSN < s.ReceiveLSN || progress == 0 {
			t.Errorf("after wait-caught-up: %s (progress calls %d); want caught up", s, progress)
		}
		if got, want := count(), before+200; got != want {
			t.Errorf("rows after resume: got %d; want %d", got, want)
		}
		if err := w.Check(ctx); err != nil {
			t.Errorf("watcher after resume: %v", err)
		}
	})

	t.Run("pause on a primary is refused", func(t *testing.T) {
		if _, err := Pause(ctx, pr); !errors.Is(err, ErrNotStandby) {
			t.Errorf("got %v; want ErrNotStandby", err)
		}
	})

	t.Run("certificates that are not replication users are refused", func(t *testing.T) {
		for _, tt := range []struct{ user, certOf, want string }{
			{"intruder", "intruder", "as intruder"},       // CN is no role at all
			{"serverconf", "serverconf", "as serverconf"}, // a role, but not a member of slavenode
		} {
			dir := filepath.Join(c.certDir, "refused-"+tt.user+"-"+tt.certOf)
			o := secondaryOpts(c.primary, dir, tt.certOf, c.node, bin)
			o.Primary.User = tt.user
			_, err := SetupSecondary(ctx, o)
			if err == nil || !strings.Contains(err.Error(), "pg_basebackup") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("user %s with the certificate of %s: got %v; want pg_basebackup refused, with %q", tt.user, tt.certOf, err, tt.want)
			}
		}
	})

	t.Run("a certificate of another node is refused before pg_basebackup", func(t *testing.T) {
		// Issue 12, bug 8: --name replica2 with replica1's certificate failed in pg_basebackup
		// with "fe_sendauth: no password supplied".
		for _, tt := range []struct{ name, certOf string }{{"replica2", "replica1"}, {"replica1", "intruder"}} {
			dir := filepath.Join(c.certDir, "cn-"+tt.name+"-"+tt.certOf)
			o := secondaryOpts(c.primary, dir, tt.certOf, c.node, bin)
			o.Primary.User = tt.name
			_, err := SetupSecondary(ctx, o)
			want := `is for "` + tt.certOf + `" (CN), not for node name "` + tt.name + `"`
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "pg_basebackup") {
				t.Errorf("--name %s with the certificate of %s: got %v; want %q before pg_basebackup", tt.name, tt.certOf, err, want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("the refused setup created %s", dir)
			}
		}
	})

	t.Run("non-empty data directory needs force", func(t *testing.T) {
		dir := filepath.Join(c.certDir, "busy")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keep-me"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := SetupSecondary(ctx, secondaryOpts(c.primary, dir, "replica1", c.node, bin))
		if !errors.Is(err, ErrDataDirNotEmpty) {
			t.Fatalf("got %v; want ErrDataDirNotEmpty", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "keep-me")); err != nil {
			t.Errorf("the refused run touched the directory: %v", err)
		}
		if _, err := SetupSecondary(ctx, secondaryOpts(c.primary, c.standby.DataDir, "replica1", c.node, bin)); !errors.Is(err, ErrServerRunning) {
			t.Errorf("setup on a running standby's data directory: got %v; want ErrServerRunning", err)
		}
	})
}

// gather returns the value of every unlabelled gauge in reg.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return out
}
