package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/upgradeenv"
)

// upgradeTour starts a second 3-node cluster as an upgrade finds it (serverconf replicated
// from a PostgreSQL primary to a standby per secondary, config sync over a real sshd, a real
// sshd on every node's address, HAProxy and nginx in front) and runs lbadapter upgrade on it
// while clients connect through both balancers all along; it prints the failed-connection
// count.
func upgradeTour(ctx context.Context, lbagent, lbadapter string) error {
	step("A rolling upgrade (guide 7.2) with lbadapter upgrade, under traffic")
	fmt.Println("   starting another 3-node cluster: serverconf on a PostgreSQL primary with a streaming standby per")
	fmt.Println("   secondary, config sync over SSH, a real sshd on 127.0.0.2-4, HAProxy and nginx in front ...")
	c, err := upgradeenv.Start(ctx, upgradeenv.Options{LBAgent: lbagent})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("   the \"upgrade command\" %s: sets the node's X-Road version file, restarts its lbagent\n", c.Command)
	if err := c.SetNext("7.5.0-1"); err != nil {
		return err
	}
	traffic, err := testenv.StartTraffic([]string{c.Frontend, c.NginxFrontend}, 3)
	if err != nil {
		return err
	}
	fmt.Printf("   clients: 3 through HAProxy (%s) and 3 through nginx (%s), one connection per message\n", c.Frontend, c.NginxFrontend)
	state := filepath.Join(c.Base, "upgrade-state.json")
	adapter := lbadapterRunner(ctx, lbadapter, c.ConfigPath, nil)
	_ = adapter("upgrade", "--command", c.Command, "--state", state, "--dry-run")
	start := time.Now()
	upErr := adapter("upgrade", "--command", c.Command, "--state", state, "--yes", "--poll", "200ms")
	took := time.Since(start)
	ok, failed := traffic.Stop()
	fmt.Printf("   upgrade took %s; clients: %d connections during the upgrade, %d failed\n", took.Round(100*time.Millisecond), ok+failed, failed)
	for _, e := range traffic.Errors() {
		fmt.Fprintln(os.Stderr, "   failed:", e)
	}
	_ = adapter("status")
	if upErr != nil {
		return fmt.Errorf("lbadapter upgrade: %w", upErr)
	}
	return nil
}
