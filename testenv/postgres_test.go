package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgresStopFreezeRestart(t *testing.T) {
	p := NewPostgres(t, PostgresOptions{})
	ctx := context.Background()
	if err := p.Exec(ctx, "postgres", "CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Freeze(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := pgx.Connect(cctx, p.SuperuserURL("postgres"))
	cancel()
	if err == nil {
		t.Fatal("connect to a frozen server succeeded; want a timeout")
	}
	if err := p.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "postgres", "SELECT 1"); err == nil {
		t.Fatal("query on a stopped server succeeded")
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, p.SuperuserURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT x FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after restart: got %d, %v; want 1, nil", n, err)
	}
}

// TestAnotherPostgresOnTheSamePortDoesNotLookHealthy is the flake of TestDatabaseStoppedThenBack
// (issue 12, bug 9): while a test's server is stopped, another test's server may take its
// port. Its credentials must not work there, or the stopped database looks healthy.
func TestAnotherPostgresOnTheSamePortDoesNotLookHealthy(t *testing.T) {
	ctx := context.Background()
	a := NewPostgres(t, PostgresOptions{})
	port := a.Port
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	b := NewPostgres(t, PostgresOptions{Port: port})
	if a.Password == b.Password {
		t.Errorf("two instances have the same superuser password %q; want one per instance", a.Password)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(cctx, a.SuperuserURL("postgres")); err == nil {
		_ = conn.Close(ctx)
		t.Errorf("the stopped instance's credentials log in to another server on port %d", port)
	}
	nodeA, err := WriteNode(t.TempDir(), NodeOptions{DB: b})
	if err != nil {
		t.Fatal(err)
	}
	nodeB, err := WriteNode(t.TempDir(), NodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nodeA.DBPassword == nodeB.DBPassword {
		t.Errorf("two nodes have the same serverconf password %q; want one per node", nodeA.DBPassword)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	// The port is kept across Stop and Start: the stopped instance gets it back.
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Port != port {
		t.Errorf("port after restart: got %d; want %d", a.Port, port)
	}
	if err := a.Exec(ctx, "postgres", "SELECT 1"); err != nil {
		t.Errorf("the restarted instance: %v", err)
	}
}

// TestFreePortSkipsPortsHandedOut: a port handed to one instance is not handed to another
// while this process runs, so a stopped instance finds its port free at Start.
func TestFreePortSkipsPortsHandedOut(t *testing.T) {
	p := NewPostgres(t, PostgresOptions{})
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		got, err := FreePort(p.Host)
		if err != nil {
			t.Fatal(err)
		}
		if got == p.Port {
			t.Fatalf("FreePort handed out port %d of a stopped instance", got)
		}
	}
}
