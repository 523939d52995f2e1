package db

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// The guide's "pg_dump -C serverconf | psql -p 5433" step: setup primary copies the serverconf
// database from the default instance, once.
func TestSetupPrimaryCopiesServerconfFromTheDefaultInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL instances")
	}
	bin := pgBin(t)
	ctx := context.Background()
	node := issue(t, filepath.Join(testenv.SharedDir(t), "certs"), "primary")
	source := testenv.NewPostgres(t, testenv.PostgresOptions{}) // the default instance (5432 on a node)
	if err := source.Exec(ctx, "postgres", "CREATE ROLE serverconf LOGIN PASSWORD 'old-pw'",
		"CREATE DATABASE serverconf OWNER serverconf"); err != nil {
		t.Fatal(err)
	}
	if err := source.Exec(ctx, "serverconf", "CREATE SCHEMA serverconf AUTHORIZATION serverconf",
		"CREATE TABLE serverconf.serverconf (id int PRIMARY KEY, servercode text)",
		"INSERT INTO serverconf.serverconf VALUES (1, 'SS1')", "ALTER TABLE serverconf.serverconf OWNER TO serverconf"); err != nil {
		t.Fatal(err)
	}
	target := testenv.NewPostgres(t, testenv.PostgresOptions{}) // the new instance (5433)
	ca, cert, key := node("primary")
	src := superConn(source)
	opts := PrimaryOptions{CAFile: ca, CertFile: cert, KeyFile: key, ListenAddresses: target.Host,
		ServerconfPassword: "new-pw", CopyFrom: &src, BinDir: bin}
	res, err := SetupPrimary(ctx, superConn(target), opts)
	if err != nil {
		t.Fatalf("setup primary with copy: %v\n%s", err, target.Log(20))
	}
	if !contains(res.Changed, "copied database serverconf from ") {
		t.Errorf("changes %q; want the copy reported", res.Changed)
	}
	check := func() {
		t.Helper()
		conn := connect(t, Conn{Host: target.Host, Port: target.Port, User: "serverconf", Password: "new-pw",
			DBName: "serverconf", SSLMode: "disable"})
		var owner, code string
		if err := conn.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE schemaname = 'serverconf' AND tablename = 'serverconf'`).Scan(&owner); err != nil || owner != "serverconf" {
			t.Fatalf("copied table owner %q, %v; want serverconf", owner, err)
		}
		if err := conn.QueryRow(ctx, "SELECT servercode FROM serverconf.serverconf WHERE id = 1").Scan(&code); err != nil || code != "SS1" {
			t.Fatalf("copied row: got %q, %v; want SS1", code, err)
		}
	}
	check()
	// A second run keeps the copy (and its rows) as they are.
	if err := target.Exec(ctx, "serverconf", "INSERT INTO serverconf.serverconf VALUES (2, 'written after the copy')"); err != nil {
		t.Fatal(err)
	}
	res, err = SetupPrimary(ctx, superConn(target), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 0 || !contains(res.Kept, "database serverconf exists") {
		t.Errorf("second run: changed %q, kept %q; want no change and the database kept", res.Changed, res.Kept)
	}
	check()
}

func contains(list []string, prefix string) bool {
	for _, s := range list {
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}
