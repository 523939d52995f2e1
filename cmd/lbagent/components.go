package main

import (
	"context"
	"fmt"
	"net"

	"github.com/xroad-lb/lbkit/agent"
	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/push"
)

// componentBuilder builds one optional part of the daemon from the configuration; it returns
// nils when the part is not enabled on this node.
type componentBuilder func(cfg agent.Config, log zerologLogger) (*agent.Component, wiring, error)

// componentBuilders lists the daemon's optional parts (config sync, replication watch,
// agent-check port, push).
var componentBuilders = []componentBuilder{replicationWatch, configSync, agentCheckPort, pushToHAProxy, versions}

// agentCheckPort serves HAProxy's agent-check ([agent-check], on by default on port 5589)
// and /lb on the health port.
func agentCheckPort(cfg agent.Config, log zerologLogger) (*agent.Component, wiring, error) {
	acfg, err := agentcheck.LoadConfig(cfg.Settings, cfg.Health)
	if err != nil || acfg.Listen == "" {
		return nil, nil, err
	}
	return nil, func(a *agent.Agent) error {
		srv, err := agentcheck.New(acfg, a.Store(), func(err error) {
			log.Warn().Err(err).Str("component", "agent-check").Msg("agent-check")
		})
		if err != nil {
			return err
		}
		srv.SetLimiter(a.Limiter())
		a.SetLBLine(srv.Line)
		a.AddStatus("agent-check", srv.Status)
		// Bound here, before the daemon tells systemd it is ready.
		ln, err := net.Listen("tcp", acfg.Listen)
		if err != nil {
			return fmt.Errorf("agent-check: listen %s: %w", acfg.Listen, err)
		}
		a.AddService("agent-check", func(ctx context.Context) error {
			log.Info().Str("listen", acfg.Listen).Str("maintenance_word", acfg.MaintenanceWord).Msg("agent-check port")
			return srv.Serve(ctx, ln)
		})
		return nil
	}, nil
}

// pushToHAProxy tells HAProxy about verdict changes at once ([push], off by default).
func pushToHAProxy(cfg agent.Config, log zerologLogger) (*agent.Component, wiring, error) {
	pcfg, err := push.LoadConfig(cfg.Settings)
	if err != nil || !pcfg.Enabled() {
		return nil, nil, err
	}
	return nil, func(a *agent.Agent) error {
		p := push.New(pcfg, a.Store(), func(e push.Event) {
			ev := log.Info()
			if e.Err != nil {
				ev = log.Warn().Err(e.Err)
			}
			ev.Str("component", "push").Str("state", string(e.State)).Strs("commands", e.Commands).
				Str("backend", pcfg.Backend).Str("server", pcfg.Server).Msg("pushed to HAProxy")
		})
		a.AddService("push", p.Run)
		return nil
	}, nil
}
