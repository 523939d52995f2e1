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
