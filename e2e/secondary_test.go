package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/sync/confsync"
	"github.com/xroad-lb/lbkit/testenv"
)

// Short timings so a state change shows in /status within a fraction of a second; the
// agent-check port is off (its default port is fixed, and other tests may hold it).
const secondaryINI = `[lbagent]
success-ttl = 200ms
failure-ttl = 200ms

[agent-check]
listen = off

[replication]
interval = 200ms
`

// TestSecondaryDaemon runs the real `lbagent run` on secondaries ([node] type=slave) and
// shows through its health port and /status what the db and sync packages promise at
// library level: the replication watch and the config sync worker inside the daemon.
func TestSecondaryDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, sshd and lbagent")
	}
	dir := t.TempDir()
	bin, err := testenv.BuildLBAgent(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	adapter := buildLBAdapter(t, dir)
	t.Run("replication", func(t *testing.T) { testSecondaryReplication(t, bin, adapter) })
	t.Run("config sync", func(t *testing.T) { testSecondarySync(t, bin, adapter) })
}

// testSecondaryReplication: db.properties points at a real hot standby of a real primary.
func testSecondaryReplication(t *testing.T, bin, adapter string) {
	ctx := context.Background()
	var node *testenv.Node
	root := t.TempDir()
	pair := newReplicaPair(t, "serverconf-pw", func(primary *testenv.Postgres) {
		// WriteNode creates the serverconf database on the primary; the base backup then
		// carries it (and the serverconf user with its pg_monitor grant) to the standby.
		var err error
		if node, err = testenv.WriteNode(root, testenv.NodeOptions{Role: "slave", DB: primary, LBAgentINI: secondaryINI,
			DBPassword: "serverconf-pw"}); err != nil {
			t.Fatal(err)
		}
		if err := primary.Exec(ctx, "postgres", "CREATE TABLE lagtest (id serial PRIMARY KEY, pad text)"); err != nil {
			t.Fatal(err)
		}
	})
	if node.DBPassword != "serverconf-pw" {
		t.Fatalf("WriteNode's serverconf password is %q; the primary was set up with serverconf-pw", node.DBPassword)
	}
	pointServerConfAt(t, node, pair.standby)
	// write makes WAL on the primary (about 10 kB per call).
	write := func() {
		t.Helper()
		if err := pair.primary.Exec(ctx, "postgres",
			"INSERT INTO lagtest (pad) SELECT repeat('x', 500) FROM generate_series(1, 20)"); err != nil {
			t.Fatal(err)
		}
	}
	sb, err := superConn(pair.standby).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close(context.Background()) })

	streaming := func(s *secondaryStatus) error {
		r := s.Components.Replication
		if r == nil || !r.Up || !r.Streaming || r.Paused || r.LagBytes != 0 || r.ReceiverState != "streaming" {
			return fmt.Errorf("components.replication: %+v; want up, streaming, not paused, lag 0", r)
		}
		if err := checkIs(s, db.CheckName, "pass", ""); err != nil {
			return err
		}
		return checkIs(s, "Server conf database status", "pass", "")
	}

	a := startAgent(t, bin, node)
	t.Run("streaming standby passes", func(t *testing.T) {
		st := a.waitStatus(t, "replication streaming", 20*time.Second, streaming)
		if st.Role != "secondary" {
			t.Errorf("role %q; want secondary", st.Role)
		}
		if c := st.check(db.CheckName); c.AffectsHealth {
			t.Errorf("%s affects health without a lag limit; want a warning only", db.CheckName)
		}
		a.waitHealth(t, "health 200", 10*time.Second, answers200)
	})

	t.Run("paused replay warns and lag grows", func(t *testing.T) {
		if _, err := db.Pause(ctx, sb); err != nil {
			t.Fatal(err)
		}
		write()
		st := a.waitStatus(t, "paused with lag", 20*time.Second, func(s *secondaryStatus) error {
			r := s.Components.Replication
			if r == nil || !r.Paused || r.LagBytes == 0 {
				write()
				return fmt.Errorf("components.replication: %+v; want paused with lag", r)
			}
			return checkIs(s, db.CheckName, "warn", fmt.Sprintf("Server conf replication is paused (lag %d bytes)", r.LagBytes))
		})
		if st.Status != "warn" || st.State != "healthy" {
			t.Errorf("/status %s %s; want warn healthy", st.Status, st.State)
		}
		// A warning: the balancer still gets X-Road's healthy answer.
		if code, body, err := a.health(); err != nil || answers200(code, body) != nil {
			t.Errorf("health port while paused: %d %q %v; want 200 with an empty body", code, body, err)
		}
		lag1 := st.Components.Replication.LagBytes
		write()
		st = a.waitStatus(t, "lag grows", 20*time.Second, func(s *secondaryStatus) error {
			if r := s.Components.Replication; r == nil || r.LagBytes <= lag1 {
				return fmt.Errorf("components.replication: %+v; want lag above %d", r, lag1)
			}
			return nil
		})
		if r := st.Components.Replication; !r.Paused || !r.Streaming || r.ReceiveLSN <= r.ReplayLSN {
			t.Errorf("components.replication: %+v; want paused, still receiving ahead of replay", r)
		}
		if v, err := a.metric("lbagent_replication_paused"); err != nil || v != 1 {
			t.Errorf("lbagent_replication_paused = %v, %v; want 1", v, err)
		}

		// lbadapter status shows the lag (no sync on this node: SYNC AGE "-").
		row := adapterRow(t, adapter, node)
		if r := row.Agent.Components.Replication; r == nil || !r.Paused || r.LagBytes <= lag1 || row.Agent.Components.Sync != nil {
			t.Errorf("lbadapter -o json components: %+v; want replication paused with lag above %d, no sync", row.Agent.Components, lag1)
		}
		table := adapterStatus(t, adapter, node).stdout
		line := regexp.MustCompile(`(?m)^ss2 +secondary +127\.0\.0\.1 +healthy +\? +\? +[0-9.]+(kB|MB)( [0-9]+s)? paused +- +.*$`)
		if !line.MatchString(table) {
			t.Errorf("lbadapter status table:\n%s\nwant a row matching %s", table, line)
		}
	})

	t.Run("resumed replay catches up and passes", func(t *testing.T) {
		if _, err := db.Resume(ctx, sb); err != nil {
			t.Fatal(err)
		}
		a.waitStatus(t, "caught up", 20*time.Second, streaming)
		a.waitHealth(t, "health 200", 10*time.Second, answers200)
	})

	t.Run("lag limit makes a paused standby fail", func(t *testing.T) {
		a.stop()
		ini := secondaryINI + "lag-limit = 1kB\n"
		if err := os.WriteFile(filepath.Join(node.XRoadDir, "conf.d", "lbagent.ini"), []byte(ini), 0o640); err != nil {
			t.Fatal(err)
		}
		a = startAgent(t, bin, node)
		st := a.waitStatus(t, "replication streaming", 20*time.Second, streaming)
		if c := st.check(db.CheckName); !c.AffectsHealth {
			t.Errorf("%s does not affect health with lag-limit set; want critical", db.CheckName)
		}
		a.waitHealth(t, "health 200", 10*time.Second, answers200)

		if _, err := db.Pause(ctx, sb); err != nil {
			t.Fatal(err)
		}
		exceeded := regexp.MustCompile(`^Server conf replication lag ([0-9]+) bytes, [0-9]+s exceeds the limit 1024 bytes$`)
		var body string
		a.waitHealth(t, "health 500", 20*time.Second, func(code int, b string) error {
			if code != 500 {
				write()
				return fmt.Errorf("health port: %d %q; want 500", code, b)
			}
			body = b
			return nil
		})
		m := exceeded.FindStringSubmatch(body[:len(body)-1])
		if body[len(body)-1] != '\n' || m == nil {
			t.Fatalf("health port body %q; want %q then a newline", body, exceeded)
		}
		if n, _ := strconv.ParseInt(m[1], 10, 64); n <= 1024 {
			t.Errorf("reported lag %d bytes is within the limit 1024", n)
		}
		a.waitStatus(t, "check fails", 5*time.Second, func(s *secondaryStatus) error {
			c := s.check(db.CheckName)
			if c.Status != "fail" || !exceeded.MatchString(c.Output) || s.Status != "fail" || s.State != "unhealthy" {
				return fmt.Errorf("/status %s %s, check %s %q; want fail unhealthy, check fail", s.Status, s.State, c.Status, c.Output)
			}
			return nil
		})

		if _, err := db.Resume(ctx, sb); err != nil {
			t.Fatal(err)
		}
		a.waitHealth(t, "health 200 after resume", 20*time.Second, answers200)
		a.waitStatus(t, "caught up", 20*time.Second, streaming)
	})
}

// testSecondarySync: the daemon's sync worker copies a real sshd's directory into a target
// directory of its own (not the node's X-Road directory) and honours the pause file.
func testSecondarySync(t *testing.T, bin, adapter string) {
	sshd := testenv.NewSSHD(t, testenv.SSHDOptions{})
	base := t.TempDir()
	primaryDir := filepath.Join(base, "primary")
	target := filepath.Join(base, "target")
	pauseFile := filepath.Join(base, "sync-disabled")
	writeTree(t, primaryDir, map[string]string{"signer/keyconf.xml": "keyconf v1\n", "conf.d/local.ini": "[proxy]\n"})

	pg := testenv.NewPostgres(t, testenv.PostgresOptions{})
	syncINI := fmt.Sprintf(`
[sync]
primary = %s
user = %s
identity = %s
known-hosts = %s
source = %s/
target = %s/
interval = 200ms
pause-file = %s
log-file = %s
state-dir = %s
`, sshd.Addr, sshd.User, sshd.ClientKeyPath, sshd.KnownHostsPath, primaryDir, target, pauseFile, filepath.Join(base, "sync.log"), filepath.Join(base, "state"))
	// failure-ttl stays at X-Road's 30 s: "Config sync status" must follow the worker's state
	// (paused, then not) at the sync interval, not at the failure cache time of X-Road's checks.
	lbagentINI := "[lbagent]\nsuccess-ttl = 200ms\n\n[agent-check]\nlisten = off\n"
	node, err := testenv.WriteNode(filepath.Join(base, "node"), testenv.NodeOptions{Role: "slave", DB: pg,
		LBAgentINI: lbagentINI, NodeINI: syncINI})
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, bin, node)

	synced := func(rel, want string) func() error {
		return func() error {
			b, err := os.ReadFile(filepath.Join(target, rel))
			if err != nil || string(b) != want {
				return fmt.Errorf("%s: %q, %v; want %q", rel, b, err, want)
			}
			return nil
		}
	}

	t.Run("first pass copies the tree", func(t *testing.T) {
		poll(t, "keyconf.xml in the target", 10*time.Second, synced("signer/keyconf.xml", "keyconf v1\n"))
		poll(t, "local.ini in the target", time.Second, synced("conf.d/local.ini", "[proxy]\n"))
		st := a.waitStatus(t, "sync status", 10*time.Second, func(s *secondaryStatus) error {
			y := s.Components.Sync
			if y == nil || y.LastSuccess == nil || y.AgeSeconds == nil || !y.Connected || y.Paused {
				return fmt.Errorf("components.sync: %+v; want connected with a last success", y)
			}
			return checkIs(s, confsync.CheckName, "pass", "")
		})
		y := st.Components.Sync
		if y.Primary != sshd.Addr || y.Target != target || y.PauseFile != pauseFile || y.LastError != "" {
			t.Errorf("components.sync: primary %q target %q pause_file %q last_error %q; want %q %q %q none",
				y.Primary, y.Target, y.PauseFile, y.LastError, sshd.Addr, target, pauseFile)
		}
		if c := st.check(confsync.CheckName); c.AffectsHealth {
			t.Errorf("%s affects health; want a warning only", confsync.CheckName)
		}
		a.waitHealth(t, "health 200", 10*time.Second, answers200)
	})

	t.Run("a change on the primary arrives", func(t *testing.T) {
		start := time.Now()
		writeTree(t, primaryDir, map[string]string{"signer/keyconf.xml": "keyconf v2, longer\n", "signer/new.p12": "new\n"})
		poll(t, "changed keyconf.xml", 5*time.Second, synced("signer/keyconf.xml", "keyconf v2, longer\n"))
		poll(t, "new.p12", time.Second, synced("signer/new.p12", "new\n"))
		st := a.waitStatus(t, "recent success", 5*time.Second, func(s *secondaryStatus) error {
			y := s.Components.Sync
			if y == nil || y.LastChange == nil || y.LastChange.Before(start) || y.LastSuccess == nil || y.LastSuccess.Before(start) {
				return fmt.Errorf("components.sync: %+v; want a change and a success after %s", y, start.Format(time.RFC3339Nano))
			}
			return nil
		})
		if y := st.Components.Sync; *y.AgeSeconds < 0 || *y.AgeSeconds > 2 {
			t.Errorf("components.sync.age_seconds %v; want a recent success (interval 200ms)", *y.AgeSeconds)
		}

		// lbadapter status shows the sync age; the replication watch finds no standby
		// behind this node's plain PostgreSQL, so LAG is "?".
		row := adapterRow(t, adapter, node)
		if y := row.Agent.Components.Sync; y == nil || y.AgeSeconds == nil || *y.AgeSeconds > 2 || y.Paused {
			t.Errorf("lbadapter -o json components.sync: %+v; want a recent success", y)
		}
		if r := row.Agent.Components.Replication; r == nil || r.Up || r.Error != "Server conf database is not a replication standby" {
			t.Errorf("lbadapter -o json components.replication: %+v; want not up, not a standby", r)
		}
		table := adapterStatus(t, adapter, node).stdout
		line := regexp.MustCompile(`(?m)^ss2 +secondary +127\.0\.0\.1 +healthy +\? +\? +\? +[0-2]s +.*$`)
		if !line.MatchString(table) {
			t.Errorf("lbadapter status table:\n%s\nwant a row matching %s", table, line)
		}
	})

	t.Run("pause file pauses and warns", func(t *testing.T) {
		if err := os.WriteFile(pauseFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("Config sync is paused (%s exists)", pauseFile)
		st := a.waitStatus(t, "paused", 5*time.Second, func(s *secondaryStatus) error {
			if y := s.Components.Sync; y == nil || !y.Paused || y.Warning != want {
				return fmt.Errorf("components.sync: %+v; want paused", y)
			}
			return checkIs(s, confsync.CheckName, "warn", want)
		})
		if st.Status != "warn" || st.State != "healthy" {
			t.Errorf("/status %s %s; want warn healthy", st.Status, st.State)
		}
		if code, body, err := a.health(); err != nil || answers200(code, body) != nil {
			t.Errorf("health port while paused: %d %q %v; want 200 with an empty body", code, body, err)
		}
		// While paused nothing is copied: let the worker skip several passes, then look.
		writeTree(t, primaryDir, map[string]string{"signer/while-paused": "x\n"})
		before, err := a.metric(`lbagent_sync_passes_total{result="paused"}`)
		if err != nil {
			t.Fatal(err)
		}
		poll(t, "three paused passes", 5*time.Second, func() error {
			if n, err := a.metric(`lbagent_sync_passes_total{result="paused"}`); err != nil || n < before+3 {
				return fmt.Errorf("paused passes %v (%v); want %v", n, err, before+3)
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(target, "signer/while-paused")); !os.IsNotExist(err) {
			t.Errorf("a file created on the primary while paused was copied (stat: %v)", err)
		}

		if err := os.Remove(pauseFile); err != nil {
			t.Fatal(err)
		}
		poll(t, "file after resume", 5*time.Second, synced("signer/while-paused", "x\n"))
		a.waitStatus(t, "sync passes again", 5*time.Second, func(s *secondaryStatus) error {
			if y := s.Components.Sync; y == nil || y.Paused {
				return fmt.Errorf("components.sync: %+v; want not paused", y)
			}
			return checkIs(s, confsync.CheckName, "pass", "")
		})
	})
}

// writeTree writes files (relative path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
