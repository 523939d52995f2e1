package main

import (
	"context"
	"fmt"
	"net"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent"
	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/push"
)

// componentBuilder builds the optional parts of the daemon from a's configuration (a.Config())
// and for a's verdict store (a.Store()); it returns none when they are not enabled on this
// node. It only reads settings: binding ports and other work belongs in the components' Setup
// and Run, which --check-config never calls.
type componentBuilder func(a *agent.Agent, log zerologLogger) ([]*agent.Component, error)

// componentBuilders lists the daemon's optional parts (replication watch, config sync,
// agent-check and push, versions), in the order their checks follow X-Road's.
var componentBuilders = []componentBuilder{one(replicationWatch), one(configSync), agentCheckAndPush, one(versions)}

// one adapts a builder of a single part.
func one(b func(a *agent.Agent, log zerologLogger) (*agent.Component, error)) componentBuilder {
	return func(a *agent.Agent, log zerologLogger) ([]*agent.Component, error) {
		c, err := b(a, log)
		if c == nil || err != nil {
			return nil, err
		}
		return []*agent.Component{c}, nil
	}
}

// buildComponents builds the enabled parts and plugs them into a; it returns their names.
func buildComponents(a *agent.Agent, log zerologLogger) ([]string, error) {
	var names []string
	for _, b := range componentBuilders {
		cs, err := b(a, log)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if err := a.Add(*c); err != nil {
				return nil, err
			}
			names = append(names, c.Name)
		}
	}
	return names, nil
}

// agentCheckAndPush builds the agent-check and push, which share the agent's one state file
// ([agent-check] state-file): what each set in HAProxy is lifted after a restart.
func agentCheckAndPush(a *agent.Agent, log zerologLogger) ([]*agent.Component, error) {
	cfg := a.Config()
	acfg, err := agentcheck.LoadConfig(cfg.Settings, cfg.Health)
	if err != nil {
		return nil, err
	}
	pcfg, err := push.LoadConfig(cfg.Settings)
	if err != nil {
		return nil, err
	}
	st, err := agentcheck.OpenState(acfg.StateFile)
	if err != nil {
		return nil, err
	}
	ac, err := agentCheckPort(a, acfg, st, log)
	if err != nil {
		return nil, err
	}
	cs := []*agent.Component{ac}
	if pcfg.Enabled() {
		pcfg.State = st
		cs = append(cs, pushToHAProxy(a, pcfg, log))
	}
	return cs, nil
}

// agentCheckPort serves HAProxy's agent-check ([agent-check], on by default on port 5589) and
// /lb on the health port. With listen = off the port is not opened, but /lb still answers the
// agent line (a Lua script reads it) from the same state machine.
func agentCheckPort(a *agent.Agent, acfg agentcheck.Config, st *agentcheck.State, log zerologLogger) (*agent.Component, error) {
	srv, err := agentcheck.NewWithState(acfg, st, a.Store(), func(err error) {
		log.Warn().Err(err).Str("component", "agent-check").Msg("agent-check port: error (it keeps answering)")
	}, clockwork.NewRealClock())
	if err != nil {
		return nil, err
	}
	srv.SetLimiter(a.Limiter())
	// Without the port, the dynamic weight (when configured) is sampled for /lb alone.
	c := &agent.Component{Name: "agent-check", Status: srv.Status, LBLine: srv.Line, Run: srv.Sample}
	if acfg.Listen == "" {
		return c, nil
	}
	var ln net.Listener
	// Bound in Setup, before the daemon tells systemd it is ready.
	c.Setup = func() error {
		ln, err = net.Listen("tcp", acfg.Listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w", acfg.Listen, err)
		}
		return nil
	}
	c.Run = func(ctx context.Context) error {
		log.Info().Str("listen", acfg.Listen).Str("maintenance_word", acfg.MaintenanceWord).Msg("agent-check port")
		return srv.Serve(ctx, ln)
	}
	return c, nil
}

// pushToHAProxy tells HAProxy about verdict changes at once ([push], off by default).
func pushToHAProxy(a *agent.Agent, pcfg push.Config, log zerologLogger) *agent.Component {
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
	return &agent.Component{Name: "push", Run: p.Run}
}
