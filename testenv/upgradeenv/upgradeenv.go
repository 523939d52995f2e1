// Package upgradeenv starts a cluster as lbadapter upgrade finds it, for the e2e tests and
// the demo: three lbagents on 127.0.0.2-4 behind a real HAProxy and a real nginx, a real sshd
// on each node's address, the serverconf database on a PostgreSQL primary with a streaming
// standby per secondary (each secondary's db.properties points at its own standby), and the
// secondaries' lbagents running the config sync from the primary's sshd. Each lbagent runs
// under a restart loop (as under systemd's Restart=always) and reads its X-Road version from
// a file; Command is an "upgrade command" that changes that version and restarts the agent.
// (A package of its own: testenv cannot import db, whose tests import testenv.)
package upgradeenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/db/certs"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/testenv"
)

// Options shape the cluster.
type Options struct {
	LBAgent string // the lbagent binary (testenv.BuildLBAgent); required
	// Check and AgentInter as in testenv.ClusterOptions (defaults there).
	Check, AgentInter string
}

// InitialVersion is the X-Road version every node reports at the start.
const InitialVersion = "7.4.0-1"

// Cluster is the running cluster.
type Cluster struct {
	*testenv.Cluster
	Base       string // base/<ip>/{xroad-version,lbagent.pid,fail,lbagent}, base/upgrade.sh, base/next-version
	Command    string // the upgrade command: base/upgrade.sh
	SyncSource string // the primary's side of the config sync
	SyncTarget map[string]string
	Primary    *testenv.Postgres
	Standbys   map[string]*testenv.Postgres
	SSHDs      []*testenv.SSHD

	loops   []*exec.Cmd
	closers []func() error
}

// NodeDir is the node's upgrade files, by address (the upgrade command finds its node by the
// address it was reached at, $SSH_CONNECTION).
func (c *Cluster) NodeDir(n *testenv.ClusterNode) string { return filepath.Join(c.Base, n.IP) }

// Start starts everything and returns once the cluster is steady on InitialVersion.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if o.LBAgent == "" {
		return nil, errors.New("upgradeenv: Options.LBAgent is required")
	}
	base, err := os.MkdirTemp("", "upgradeenv-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Base: base, Standbys: map[string]*testenv.Postgres{}, SyncTarget: map[string]string{}}
	c.closers = append(c.closers, func() error { return os.RemoveAll(base) })
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	if err := os.Chmod(base, 0o755); err != nil { // the postgres user enters it (certs, standbys)
		return nil, err
	}
	pgBin, err := testenv.PostgresBinDir()
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(base, "certs")
	uid, gid, chown, err := testenv.PostgresOwner()
	if err != nil {
		return nil, err
	}
	copts := certs.Options{Chown: chown, UID: uid, GID: gid}
	if _, _, err := certs.WriteCA(certDir, copts); err != nil {
		return nil, err
	}
	files := func(name string) (ca, cert, key string, err error) {
		if _, err := certs.WriteNode(certDir, filepath.Join(certDir, name), name, copts); err != nil {
			return "", "", "", err
		}
		d := filepath.Join(certDir, name)
		return filepath.Join(d, certs.CACertFile), filepath.Join(d, certs.NodeCertFile), filepath.Join(d, certs.NodeKeyFile), nil
	}

	// The serverconf primary, set up for replication to ss2 and ss3 (TLS, cert users).
	if c.Primary, err = testenv.StartPostgres(ctx, testenv.PostgresOptions{}); err != nil {
		return nil, err
	}
	c.closers = append(c.closers, c.Primary.Close)
	super := db.Conn{Host: c.Primary.Host, Port: c.Primary.Port, User: "postgres", Password: c.Primary.Password, DBName: "postgres", SSLMode: "disable"}
	ca, cert, key, err := files("primary")
	if err != nil {
		return nil, err
	}
	if _, err := db.SetupPrimary(ctx, super, db.PrimaryOptions{CAFile: ca, CertFile: cert, KeyFile: key,
		ListenAddresses: c.Primary.Host, Replicas: []string{"ss2", "ss3"}, ServerconfPassword: c.Primary.ServerconfPassword()}); err != nil {
		return nil, fmt.Errorf("setup primary: %w\n%s", err, c.Primary.Log(20))
	}
	tlsConn := super
	tlsConn.SSLMode, tlsConn.CAFile = "verify-ca", ca
	if err := pollFor(ctx, 20*time.Second, func() error { // the reload that turns TLS on is asynchronous
		conn, err := tlsConn.Connect(ctx)
		if err == nil {
			_ = conn.Close(ctx)
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("TLS on the primary: %w", err)
	}

	cl, err := testenv.StartCluster(ctx, testenv.ClusterOptions{LBAgent: o.LBAgent, DB: c.Primary, Nginx: true,
		Check: o.Check, AgentInter: o.AgentInter, LBAgentINI: "[replication]\ninterval = 200ms\n"})
	if err != nil {
		return nil, err
	}
	c.Cluster = cl
	c.closers = append(c.closers, cl.Close)

	// A real sshd on every node's address; one client key and one known_hosts for all.
	var known strings.Builder
	for _, n := range c.Nodes {
		s, err := testenv.StartSSHD(ctx, testenv.SSHDOptions{Host: n.IP})
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, s.Close)
		c.SSHDs = append(c.SSHDs, s)
		b, err := os.ReadFile(s.KnownHostsPath)
		if err != nil {
			return nil, err
		}
		known.Write(b)
	}
	clientPub, err := os.ReadFile(c.SSHDs[0].ClientKeyPath + ".pub")
	if err != nil {
		return nil, err
	}
	for _, s := range c.SSHDs[1:] {
		if err := appendFile(filepath.Join(s.Dir, "authorized_keys"), clientPub); err != nil {
			return nil, err
		}
	}
	knownHosts := filepath.Join(base, "known_hosts")
	identity := c.SSHDs[0].ClientKeyPath
	if err := os.WriteFile(knownHosts, []byte(known.String()), 0o644); err != nil {
		return nil, err
	}

	// The config sync's source on the primary.
	c.SyncSource = filepath.Join(base, "primary-etc")
	if err := writeFiles(c.SyncSource, map[string]string{"signer/keyconf.xml": "keyconf v1\n", "conf.d/local.ini": "[proxy]\n"}); err != nil {
		return nil, err
	}
	clusterINI, err := os.ReadFile(c.ConfigPath)
	if err != nil {
		return nil, err
	}
	cfg := string(clusterINI)
	for i, n := range c.Nodes {
		nd := c.NodeDir(n)
		if err := writeFiles(nd, map[string]string{"xroad-version": InitialVersion + "\n"}); err != nil {
			return nil, err
		}
		confd := filepath.Join(n.XRoad.XRoadDir, "conf.d")
		ini, err := os.ReadFile(filepath.Join(confd, "lbagent.ini"))
		if err != nil {
			return nil, err
		}
		lbagentINI := strings.Replace(string(ini), "[lbagent]\n", "[lbagent]\nxroad-version-file = "+filepath.Join(nd, "xroad-version")+"\n", 1)
		env := ""
		if n.Role == "secondary" {
			// Its own standby, made from the primary with pg_basebackup.
			dataDir := filepath.Join(base, "standby-"+n.Name)
			ca, cert, key, err := files(n.Name)
			if err != nil {
				return nil, err
			}
			if _, err := db.SetupSecondary(ctx, db.SecondaryOptions{DataDir: dataDir, BinDir: pgBin,
				RunAs: testenv.PostgresUser(), ListenAddresses: "127.0.0.1",
				Primary: db.Conn{Host: c.Primary.Host, Port: c.Primary.Port, User: n.Name, CAFile: ca, CertFile: cert, KeyFile: key},
			}); err != nil {
				return nil, fmt.Errorf("setup secondary %s: %w\n%s", n.Name, err, c.Primary.Log(20))
			}
			sb, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{DataDir: dataDir})
			if err != nil {
				return nil, err
			}
			c.closers = append(c.closers, sb.Close)
			c.Standbys[n.Name] = sb
			if err := pointServerConfAt(n.XRoad, sb); err != nil {
				return nil, err
			}
			c.SyncTarget[n.Name] = filepath.Join(base, n.Name+"-sync")
			lbagentINI += fmt.Sprintf(`
[sync]
primary = %s
user = root
identity = %s
known-hosts = %s
source = %s/
target = %s/
interval = 200ms
pause-file = %s
log-file = %s
state-dir = %s
serve-command =
`, c.SSHDs[0].Addr, identity, knownHosts, c.SyncSource, c.SyncTarget[n.Name], filepath.Join(nd, "sync-disabled"),
				filepath.Join(nd, "sync.log"), filepath.Join(nd, "sync-state"))
			env = fmt.Sprintf("PGHOST=127.0.0.1 PGPORT=%d PGUSER=postgres PGPASSWORD=%s PGSSLMODE=disable ", sb.Port, sb.Password)
		}
		if err := os.WriteFile(filepath.Join(confd, "lbagent.ini"), []byte(lbagentINI), 0o640); err != nil {
			return nil, err
		}
		// lbagent as run over SSH on this node: its X-Road directory, and for the db
		// commands its standby's superuser (as "sudo -u postgres" would be).
		wrapper := filepath.Join(nd, "lbagent")
		script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = --version ] && exec %s --version\nexport %s\nexec %s \"$@\" --xroad-dir %s\n",
			o.LBAgent, strings.TrimSpace(env+"LBAGENT_NODE="+n.Name), o.LBAgent, n.XRoad.XRoadDir)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			return nil, err
		}
		cfg = strings.Replace(cfg, fmt.Sprintf("[node %q]\n", n.Name),
			fmt.Sprintf("[node %q]\nssh = root@%s\nlbagent = %s\ndb-lbagent = %s\n", n.Name, c.SSHDs[i].Addr, wrapper, wrapper), 1)

		// The agent, restarted whenever it exits (the upgrade command kills it).
		if err := n.StopAgent(); err != nil {
			return nil, err
		}
		loop := fmt.Sprintf(`while [ ! -e %[1]s/stop ]; do
  %[2]s run --xroad-dir %[3]s --ocsp-cache-dir %[4]s --admin-listen %[5]s >> %[1]s/lbagent.log 2>&1 &
  echo $! > %[1]s/lbagent.pid
  wait $!
  sleep 0.05
done`, nd, o.LBAgent, n.XRoad.XRoadDir, n.XRoad.OCSPDir, n.AdminAddr)
		cmd := exec.Command("/bin/sh", "-c", loop)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		c.loops = append(c.loops, cmd)
	}
	cfg += fmt.Sprintf("\n[ssh]\nuser = root\nidentity = %s\nknown-hosts = %s\n", identity, knownHosts)
	if err := os.WriteFile(c.ConfigPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}

	// The upgrade command: the node (found by the address it was reached at) gets the version
	// in base/next-version, then its lbagent is restarted; base/<ip>/fail makes it fail as
	// a broken package would.
	c.Command = filepath.Join(base, "upgrade.sh")
	script := fmt.Sprintf(`#!/bin/sh
set -e
ip=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
d=%[1]s/$ip
if [ -e "$d/fail" ]; then
  echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2
  exit 100
fi
new=$(cat %[1]s/next-version)
echo "Unpacking xroad-proxy ($new) over ($(cat $d/xroad-version)) ..."
echo "$new" > "$d/xroad-version.tmp" && mv "$d/xroad-version.tmp" "$d/xroad-version"
kill $(cat "$d/lbagent.pid")
echo "Setting up xroad-proxy ($new) ..."
`, base)
	if err := os.WriteFile(c.Command, []byte(script), 0o755); err != nil {
		return nil, err
	}
	if err := c.SetNext(InitialVersion); err != nil {
		return nil, err
	}
	if err := pollFor(ctx, 90*time.Second, func() error { return c.Steady(InitialVersion) }); err != nil {
		return nil, fmt.Errorf("cluster not steady: %w", err)
	}
	return c, nil
}

// Close stops everything.
func (c *Cluster) Close() error {
	var errs []error
	if c.Cluster != nil {
		for _, n := range c.Nodes {
			_ = os.WriteFile(filepath.Join(c.NodeDir(n), "stop"), nil, 0o644)
		}
	}
	for _, cmd := range c.loops {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	c.loops = nil
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// SetNext sets the version the upgrade command installs.
func (c *Cluster) SetNext(v string) error {
	return writeFiles(c.Base, map[string]string{"next-version": v + "\n"})
}

// SetFail makes the upgrade command fail on the node (or work again).
func (c *Cluster) SetFail(n *testenv.ClusterNode, fail bool) error {
	p := filepath.Join(c.NodeDir(n), "fail")
	if fail {
		return os.WriteFile(p, []byte("1\n"), 0o644)
	}
	return os.Remove(p)
}

// Status is the node's /status as lbadapter reads it.
func (c *Cluster) Status(n *testenv.ClusterNode) (lbadapters.AgentStatus, error) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get(n.StatusURL())
	if err != nil {
		return lbadapters.AgentStatus{}, err
	}
	defer resp.Body.Close()
	var s lbadapters.AgentStatus
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// Version is the node's reported X-Road version ("" on error).
func (c *Cluster) Version(n *testenv.ClusterNode) string {
	s, err := c.Status(n)
	if err != nil || s.Components.Version == nil {
		return ""
	}
	return s.Components.Version.XRoad
}

// Steady says why the cluster is not as an upgrade wants to find and leave it: every node UP
// on HAProxy, healthy, on version; replication streaming, not paused and caught up; sync not
// paused with a recent success.
func (c *Cluster) Steady(version string) error {
	ctx := context.Background()
	for _, n := range c.Nodes {
		st, _, err := c.ServerStatus(ctx, n.Name)
		if err != nil || st != "UP" {
			return fmt.Errorf("%s: HAProxy %q %v", n.Name, st, err)
		}
		s, err := c.Status(n)
		if err != nil {
			return fmt.Errorf("%s: %v", n.Name, err)
		}
		if s.State != "healthy" || s.Components.Version == nil || s.Components.Version.XRoad != version {
			return fmt.Errorf("%s: %s (%s), version %+v; want healthy on %s", n.Name, s.State, s.Output, s.Components.Version, version)
		}
		if n.Role != "secondary" {
			continue
		}
		if r := s.Components.Replication; r == nil || !r.Up || !r.Streaming || r.Paused || r.LagBytes != 0 {
			return fmt.Errorf("%s: replication %+v; want streaming, not paused, caught up", n.Name, r)
		}
		if y := s.Components.Sync; y == nil || y.Paused || y.AgeSeconds == nil || *y.AgeSeconds > 5 {
			return fmt.Errorf("%s: sync %+v; want running with a recent success", n.Name, y)
		}
	}
	return nil
}

func pollFor(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func writeFiles(dir string, files map[string]string) error {
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pointServerConfAt rewrites the node's db.properties so serverconf is read from p.
func pointServerConfAt(node *testenv.Node, p *testenv.Postgres) error {
	path := filepath.Join(node.XRoadDir, "db.properties")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const key = "serverconf.hibernate.connection.url = jdbc:postgresql://"
	var out []string
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) && strings.HasSuffix(l, "/serverconf") {
			l, found = key+p.Addr()+"/serverconf", true
		}
		out = append(out, l)
	}
	if !found {
		return fmt.Errorf("%s has no serverconf URL line", path)
	}
	return os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o640)
}
