package main

import (
	"context"
	"fmt"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
	"github.com/xroad-lb/lbkit/testenv/elbv2"
)

// awsTour shows the same cluster as targets of an ELBv2 target group on the local
// ELBv2-compatible endpoint (which health-checks the lbagents every second, thresholds 2/2,
// deregistration delay 5 s): lbadapter status with both balancers, a drain on both that waits
// out the delay, maintenance mode seen by the endpoint's health checks, and enable.
func awsTour(ctx context.Context, c *testenv.Cluster, config, lbadapter string) error {
	step("The same nodes in an AWS target group (a local ELBv2-compatible endpoint that health-checks the agents)")
	id, _ := c.ELBv2.Credentials()
	fmt.Printf("   endpoint %s (SigV4-checked; test access key %s), target group\n   %s\n", c.ELBv2.URL, id, c.TargetGroupARN)
	fmt.Println("   health check HTTP on each lbagent's health port, interval 1s, thresholds 2/2, deregistration delay 5s;")
	fmt.Println("   lbadapter talks to it through the AWS SDK (its environment: the endpoint's test credentials,")
	fmt.Println("   AWS_EC2_METADATA_DISABLED=true; cluster.ini names the endpoint)")
	adapter := lbadapterRunner(ctx, lbadapter, config, c.AWSEnv())
	_ = adapter("status")
	fmt.Println("   # drain ss3 on both balancers at once: HAProxy has no session left at once, the target group")
	fmt.Println("   # keeps the target draining for its deregistration delay")
	if err := adapter("drain", "ss3", "--poll", "250ms"); err != nil {
		return fmt.Errorf("lbadapter drain: %w", err)
	}
	if err := adapter("enable", "ss3", "--poll", "250ms"); err != nil {
		return fmt.Errorf("lbadapter enable: %w", err)
	}

	ss2 := c.Node("ss2")
	fmt.Printf("$ curl -s \"http://%s/maintenance?targetState=true\"   # on ss2: its health port answers 503\n", ss2.AdminAddr)
	if err := maintenance(ctx, ss2, true); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.ELBv2.WaitHealth(wctx, c.TargetGroupARN, ss2.IP, ss2.MsgPort(), elbv2.StateUnhealthy); err != nil {
		return err
	}
	fmt.Println("   # two failed health checks later the target group shows ss2 unhealthy, with AWS's reason:")
	_ = adapter("status")
	fmt.Printf("$ curl -s \"http://%s/maintenance?targetState=false\"\n", ss2.AdminAddr)
	if err := maintenance(ctx, ss2, false); err != nil {
		return err
	}
	if err := c.ELBv2.WaitHealth(wctx, c.TargetGroupARN, ss2.IP, ss2.MsgPort(), elbv2.StateHealthy); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if err := c.WaitServer(wctx, n.Name, func(s string) bool { return s == "UP" }); err != nil {
			return err
		}
	}
	_ = adapter("status")
	return nil
}
