package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xroad-lb/lbkit/agent"
	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/sync/confsync"
)

// configSync runs the config sync worker on secondaries whose [sync] section names the
// primary ("Config sync status" is a warning: a secondary keeps serving while the primary is
// away).
func configSync(a *agent.Agent, log zerologLogger) (*agent.Component, error) {
	cfg := a.Config()
	if cfg.Role != xroad.Secondary {
		return nil, nil
	}
	scfg, err := confsync.LoadConfig(cfg.XRoadDir)
	if err != nil {
		return nil, err
	}
	if scfg.Primary == "" {
		log.Warn().Str("component", "sync").Msg("secondary without [sync] primary in conf.d/node.ini or lbagent.ini: config sync is off")
		return nil, nil
	}
	w, err := confsync.NewWorker(scfg)
	if err != nil {
		return nil, err
	}
	w.Report = syncReporter(log, scfg)
	// Before the checks read /etc/xroad: complete a commit a crash interrupted.
	recoverFirst := func() error {
		if done, err := w.Recover(); err != nil {
			log.Warn().Str("component", "sync").Err(err).Msg("config sync: completing an interrupted commit failed; the next pass retries")
		} else if done {
			log.Warn().Str("component", "sync").Str("target", scfg.Target).Msg("config sync: completed a commit interrupted by a crash")
		}
		return nil
	}
	return &agent.Component{
		Name: "sync",
		// The check only reads the worker's state: re-read it every interval after a pass and
		// after a failure alike, so a removed pause file is not reported for failure-ttl (30 s).
		Checks: []check.Spec{{Name: confsync.CheckName, Run: w.Check, Severity: check.Warning,
			PassTTL: scfg.Interval, FailTTL: scfg.Interval}},
		Setup:      recoverFirst,
		Run:        w.Run,
		Status:     func() any { return w.Status() },
		Collectors: []prometheus.Collector{w.Metrics()},
	}, nil
}
