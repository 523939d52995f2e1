package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/xroad-lb/lbkit/agent"
	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/push"
)

// componentBuilder builds one optional part of the daemon from the configuration; it returns
// nils when the part is not enabled on this node.
type componentBuilder func(cfg agent.Config, log zerologLogger) (*agent.Component, wiring, error)

// componentBuilders lists the daemon's optional parts (config sync, replication watch,
// agent-check port and push).
var componentBuilders = []componentBuilder{replicationWatch, configSync, agentCheckAndPush}

// agentCheckAndPush builds the agent-check port and push, which share the agent's one state
// file ([agent-check] state-file): what each set in HAProxy is lifted after a restart.
func agentCheckAndPush(cfg agent.Config, log zerologLogger) (*agent.Component, wiring, error) {
	acfg, err := agentcheck.LoadConfig(cfg.Settings, cfg.Health)
	if err != nil {
		return nil, nil, err
	}
	pcfg, err := push.LoadConfig(cfg.Settings)
	if err != nil {
		return nil, nil, err
	}
	if acfg.Listen == "" && !pcfg.Enabled() {
		return nil, nil, nil
	}
	return nil, func(a *agent.Agent) error {
		st, err := agentcheck.OpenState(acfg.StateFile)
		if err != nil {
			return err
		}
		if acfg.Listen != "" {
			if err := agentCheckPort(a, acfg, st, log); err != nil {
				return err
			}
		}
		if pcfg.Enabled() {
			pcfg.State = st
			pushToHAProxy(a, pcfg, log)
		}
		return nil
	}, nil
}

// agentCheckPort serves HAProxy's agent-check ([agent-check], on by default on port 5589)
// and /lb on the health port.
func agentCheckPort(a *agent.Agent, acfg agentcheck.Config, st *agentcheck.State, log zerologLogger) error {
	srv, err := agentcheck.NewWithState(acfg, st, a.Store(), func(err error) {
		log.Warn().Err(err).Str("component", "agent-check").Msg("agent-check port: error (it keeps answering)")
	}, time.Now)
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
}

// pushToHAProxy tells HAProxy about verdict changes at once ([push], off by default).
func pushToHAProxy(a *agent.Agent, pcfg push.Config, log zerologLogger) {
	p := push.New(pcfg, a.Store(), func(e push.Event) {
		ev := log.Info()
		if e.Err != nil {
			ev = log.Warn().Err(e.Err)
		}
		ev.Str("component", "push").Str("state", string(e.State)).Strs("commands", e.Commands).
			Str("backend", pcfg.Backend).Str("server", pcfg.Server).Msg("pushed to HAProxy")
		if e.StateErr != nil {
			log.Warn().Err(e.StateErr).Str("component", "push").
				Msg("push: the state file is not written: a drain pushed now is not lifted after a restart")
		}
	})
	a.AddService("push", p.Run)
}
