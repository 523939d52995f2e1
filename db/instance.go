package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
)

// InstanceOptions describe the separate PostgreSQL instance for serverconf (guide 4.2).
type InstanceOptions struct {
	Name string // cluster name; default "serverconf"
	Port int    // default 5433
	// Method is "pg_createcluster" (Debian/Ubuntu), "initdb" (elsewhere) or "" to pick
	// pg_createcluster when it is installed.
	Method  string
	Version string // PostgreSQL major version for pg_createcluster; default the newest installed
	DataDir string // for initdb (required there); pg_createcluster picks its own
	BinDir  string // where initdb is; default: PATH, then /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin
	RunAs   string // OS user owning the cluster; default "postgres"
}

// CreateInstance creates (but does not start) the serverconf instance. With
// pg_createcluster it runs "pg_createcluster -p <port> <version> <name>" (configuration in
// /etc/postgresql/<version>/<name>, data in /var/lib/postgresql/<version>/<name>, service
// postgresql@<version>-<name>). With initdb it runs "initdb --auth-local=peer
// --auth-host=scram-sha-256 --encoding=UTF8 -D <data-dir>" as the postgres user and writes
// port = <port> into postgresql.auto.conf. An existing instance is left alone.
func CreateInstance(ctx context.Context, o InstanceOptions) (*Result, error) {
	if o.Name == "" {
		o.Name = "serverconf"
	}
	if o.Port == 0 {
		o.Port = 5433
	}
	if o.RunAs == "" {
		o.RunAs = "postgres"
	}
	if o.Method == "" {
		o.Method = "initdb"
		if _, err := exec.LookPath("pg_createcluster"); err == nil {
			o.Method = "pg_createcluster"
		}
	}
	switch o.Method {
	case "pg_createcluster":
		return createCluster(ctx, o)
	case "initdb":
		return initInstance(ctx, o)
	}
	return nil, fmt.Errorf("create instance: unknown method %q (want pg_createcluster or initdb)", o.Method)
}

// CreateClusterArgs is the pg_createcluster command line for o.
func CreateClusterArgs(o InstanceOptions) []string {
	return []string{"pg_createcluster", "-p", strconv.Itoa(o.Port), o.Version, o.Name}
}

func createCluster(ctx context.Context, o InstanceOptions) (*Result, error) {
	if o.Version == "" {
		m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
		if len(m) == 0 {
			return nil, errors.New("create instance: no PostgreSQL server in /usr/lib/postgresql (give --version)")
		}
		sort.Strings(m)
		o.Version = filepath.Base(filepath.Dir(filepath.Dir(m[len(m)-1])))
	}
	res := &Result{}
	conf := filepath.Join("/etc/postgresql", o.Version, o.Name)
	if _, err := os.Stat(conf); err == nil {
		res.kept("cluster %s/%s exists (%s)", o.Version, o.Name, conf)
		return res, nil
	}
	args := CreateClusterArgs(o)
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return nil, commandError("pg_createcluster "+o.Version+" "+o.Name, err, out)
	}
	res.changed("created cluster %s/%s on port %d (%s)", o.Version, o.Name, o.Port, conf)
	res.Notes = append(res.Notes, fmt.Sprintf("start it: systemctl enable --now postgresql@%s-%s", o.Version, o.Name))
	return res, nil
}

func initInstance(ctx context.Context, o InstanceOptions) (*Result, error) {
	if o.DataDir == "" {
		return nil, errors.New("create instance: initdb needs a data directory (--data-dir, e.g. /var/lib/pgsql/15/serverconf)")
	}
	res := &Result{}
	if _, err := os.Stat(filepath.Join(o.DataDir, "PG_VERSION")); err == nil {
		res.kept("%s is already a PostgreSQL data directory", o.DataDir)
		return res, nil
	}
	initdb, err := findProgram(o.BinDir, "initdb")
	if err != nil {
		return nil, err
	}
	owner, err := lookupUser(o.RunAs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create instance: %w", err)
	}
	if err := owner.chown(o.DataDir); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, initdb, "--auth-local=peer", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "-D", o.DataDir)
	cmd.Dir = os.TempDir()
	owner.apply(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, commandError("initdb "+o.DataDir, err, out)
	}
	if err := setAutoConf(filepath.Join(o.DataDir, "postgresql.auto.conf"), "written by lbagent db create-instance",
		[][2]string{{"port", strconv.Itoa(o.Port)}}); err != nil {
		return nil, fmt.Errorf("create instance: %w", err)
	}
	res.changed("initialized %s (port %d)", o.DataDir, o.Port)
	res.Notes = append(res.Notes, "create a service for it (see docs/replication.md), then start it")
	return res, nil
}
