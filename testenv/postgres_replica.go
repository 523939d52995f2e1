package testenv

import (
	"os"
	"testing"
)

// PostgresOwner returns the uid and gid that PostgreSQL servers run as (the "postgres" user
// when we are root); ok is false when servers run as ourselves and no chown is needed.
func PostgresOwner() (uid, gid int, ok bool, err error) {
	a, err := dropTo("postgres")
	if err != nil || a == nil {
		return 0, 0, false, err
	}
	return a.uid, a.gid, true, nil
}

// PostgresUser is the OS user PostgreSQL programs run as: "postgres" when we are root, ""
// (ourselves) otherwise.
func PostgresUser() string {
	if os.Geteuid() == 0 {
		return "postgres"
	}
	return ""
}

// SharedDir returns a new directory that the PostgreSQL server user can enter (mode 0755),
// for TLS files and standby data directories; it is removed at cleanup. (t.TempDir is 0700
// and owned by root, so a server running as postgres could not read files in it.)
func SharedDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "testenv-shared-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}
