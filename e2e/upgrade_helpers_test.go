package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/upgradeenv"
)

// upgradeCluster is upgradeenv's cluster with the test's lbadapter.
type upgradeCluster struct {
	*upgradeenv.Cluster
	adapter string
}

func newUpgradeCluster(t *testing.T) *upgradeCluster {
	t.Helper()
	testenv.Require(t, "haproxy")
	testenv.Require(t, "nginx")
	testenv.Require(t, "sshd")
	pgBin, err := testenv.PostgresBinDir()
	if err != nil {
		testenv.Require(t, "initdb", "/usr/lib/postgresql/15/bin")
	}
	testenv.Require(t, "pg_basebackup", pgBin)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := testenv.BuildLBAgent(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := upgradeenv.Start(ctx, upgradeenv.Options{LBAgent: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &upgradeCluster{Cluster: c, adapter: buildLBAdapter(t, dir)}
}

func (u *upgradeCluster) status(n *testenv.ClusterNode) (lbadapters.AgentStatus, error) {
	return u.Status(n)
}

func (u *upgradeCluster) version(n *testenv.ClusterNode) string { return u.Version(n) }

func (u *upgradeCluster) nodeDir(n *testenv.ClusterNode) string { return u.NodeDir(n) }

func (u *upgradeCluster) waitSteady(t *testing.T, version string) {
	t.Helper()
	poll(t, "cluster steady on "+version, 60*time.Second, func() error { return u.Steady(version) })
}

// setNext sets the version the upgrade command installs.
func (u *upgradeCluster) setNext(t *testing.T, v string) {
	t.Helper()
	if err := u.SetNext(v); err != nil {
		t.Fatal(err)
	}
}

// upgradeArgs is lbadapter's arguments for an upgrade of the cluster with extra args.
func (u *upgradeCluster) upgradeArgs(state string, args ...string) []string {
	return append([]string{"--config", u.ConfigPath, "upgrade", "--state", state, "--poll", "100ms"}, args...)
}

// runAdapter runs lbadapter (10 min bound: a whole upgrade on a loaded machine).
func (u *upgradeCluster) runAdapter(t *testing.T, args ...string) result {
	t.Helper()
	return u.runAdapterAnswering(t, "", args...)
}

// runAdapterAnswering runs lbadapter with answers on its stdin.
func (u *upgradeCluster) runAdapterAnswering(t *testing.T, answers string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return runLBAdapterWith(ctx, nil, answers, u.adapter, args...)
}
