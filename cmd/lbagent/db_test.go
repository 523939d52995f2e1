package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/testenv"
)

// lbagent runs one command tree with args and returns its output and error.
func lbagent(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestDBCommands builds a primary and a standby with the commands an operator types.
func TestDBCommands(t *testing.T) {
	bin, err := testenv.PostgresBinDir()
	if err != nil {
		testenv.Require(t, "initdb", "/usr/lib/postgresql/15/bin")
	}
	testenv.Require(t, "pg_basebackup", bin)
	shared := testenv.SharedDir(t)
	pki := filepath.Join(shared, "pki")
	owner := testenv.PostgresUser()
	certArgs := func(a ...string) []string {
		if owner != "" {
			a = append(a, "--owner", owner)
		}
		return a
	}
	for _, args := range [][]string{
		certArgs("ca", "--out", pki),
		certArgs("node", "--ca-dir", pki, "--name", "primary"),
		certArgs("node", "--ca-dir", pki, "--name", "replica1"),
	} {
		if out, err := lbagent(t, newCertsCmd(), args...); err != nil {
			t.Fatalf("certs %q: %v\n%s", args, err, out)
		}
	}
	if _, err := lbagent(t, newCertsCmd(), "ca", "--out", pki); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("certs ca over existing files: got %v; want a refusal naming --force", err)
	}

	primary := testenv.NewPostgres(t, testenv.PostgresOptions{})
	t.Setenv("PGPASSWORD", primary.Password)
	xroadDir := filepath.Join(shared, "xroad") // no db.properties: flags and PG* only
	conn := func(p *testenv.Postgres) []string {
		return []string{"--xroad-dir", xroadDir, "--host", p.Host, "--port", strconv.Itoa(p.Port), "--user", "postgres", "--sslmode", "disable"}
	}
	tls := func(node string) []string {
		d := filepath.Join(pki, node)
		return []string{"--ca", filepath.Join(d, "ca.crt"), "--cert", filepath.Join(d, "server.crt"), "--key", filepath.Join(d, "server.key")}
	}
	setupPrimary := append(append(append([]string{"setup", "primary"}, conn(primary)...), tls("primary")...),
		"--replica", "replica1", "--listen-addresses", primary.Host)
	out, err := lbagent(t, newDBCmd(), setupPrimary...)
	if err != nil || !strings.Contains(out, "changed: created replication user replica1") {
		t.Fatalf("setup primary: %v\n%s", err, out)
	}
	out, err = lbagent(t, newDBCmd(), setupPrimary...)
	if err != nil || !strings.Contains(out, "nothing changed") || strings.Contains(out, "\nchanged:") || strings.HasPrefix(out, "changed:") {
		t.Fatalf("second setup primary: %v; want nothing changed\n%s", err, out)
	}

	dataDir := filepath.Join(shared, "standby")
	secondary := append([]string{"setup", "secondary", "--primary", primary.Host, "--primary-port", strconv.Itoa(primary.Port),
		"--name", "replica1", "--data-dir", dataDir, "--bin-dir", bin, "--xroad-dir", xroadDir}, tls("replica1")...)
	if owner == "" {
		u, _ := user.Current()
		owner = u.Username
	}
	secondary = append(secondary, "--run-as", owner)
	if out, err := lbagent(t, newDBCmd(), secondary...); err != nil {
		t.Fatalf("setup secondary: %v\n%s", err, out)
	}
	if out, err := lbagent(t, newDBCmd(), secondary...); err != nil || !strings.Contains(out, "nothing changed") {
		t.Fatalf("second setup secondary: %v; want nothing changed\n%s", err, out)
	}
	standby := testenv.NewPostgres(t, testenv.PostgresOptions{DataDir: dataDir})

	if err := primary.Exec(context.Background(), "postgres", "CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if out, err := lbagent(t, newDBCmd(), append([]string{"wait-caught-up", "--interval", "100ms", "--timeout", "30s"}, conn(standby)...)...); err != nil ||
		!strings.Contains(out, "caught up at") {
		t.Fatalf("wait-caught-up: %v\n%s", err, out)
	}
	if out, err := lbagent(t, newDBCmd(), append([]string{"pause"}, conn(standby)...)...); err != nil || !strings.Contains(out, "replay paused") {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	out, err = lbagent(t, newDBCmd(), append([]string{"status", "-o", "json"}, conn(standby)...)...)
	var r db.Report
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.Role != "standby" || r.Standby == nil || !r.Standby.Paused {
		t.Fatalf("status on the paused standby: %v\n%s", err, out)
	}
	if _, err := lbagent(t, newDBCmd(), append([]string{"wait-caught-up", "--timeout", "5s"}, conn(standby)...)...); err == nil ||
		!strings.Contains(err.Error(), "paused") || !strings.Contains(err.Error(), strconv.Itoa(standby.Port)) {
		t.Errorf("wait-caught-up while paused: got %v; want a paused error naming port %d", err, standby.Port)
	}
	if out, err := lbagent(t, newDBCmd(), append([]string{"resume"}, conn(standby)...)...); err != nil || !strings.Contains(out, "not paused") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	out, err = lbagent(t, newDBCmd(), append([]string{"status"}, conn(primary)...)...)
	if err != nil || !strings.Contains(out, "replica1") || !strings.Contains(out, "CN=replica1") {
		t.Errorf("status on the primary: %v; want replica1 listed\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "standby.signal")); err != nil {
		t.Error(err)
	}
}
