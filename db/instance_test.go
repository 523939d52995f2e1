package db

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

func TestCreateClusterArgs(t *testing.T) {
	got := CreateClusterArgs(InstanceOptions{Name: "serverconf", Port: 5433, Version: "15"})
	want := []string{"pg_createcluster", "-p", "5433", "15", "serverconf"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestCreateInstanceInitdb(t *testing.T) {
	bin := pgBin(t)
	dir := filepath.Join(testenv.SharedDir(t), "serverconf")
	opts := InstanceOptions{Method: "initdb", DataDir: dir, BinDir: bin, Port: 5433, RunAs: testenv.PostgresUser()}
	if opts.RunAs == "" {
		u := os.Getenv("USER")
		opts.RunAs = u
	}
	res, err := CreateInstance(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 1 {
		t.Fatalf("first run: changed %q; want one change", res.Changed)
	}
	b, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := confValue(string(b), "port"); !ok || v != "5433" {
		t.Errorf("port in postgresql.auto.conf: got %q, %v; want 5433", v, ok)
	}
	// A new instance is no standby (issue 12, bug 8: the comment said "standby settings").
	if strings.Contains(string(b), "standby") || !strings.Contains(string(b), "# written by lbagent db create-instance\n") {
		t.Errorf("postgresql.auto.conf of a new instance:\n%s\nwant a create-instance comment, no word of a standby", b)
	}
	res, err = CreateInstance(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 0 {
		t.Errorf("second run: changed %q; want nothing", res.Changed)
	}
}
