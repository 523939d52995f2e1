package agent

import (
	"fmt"
	"reflect"

	"github.com/xroad-lb/lbkit/agent/check"
)

// Reload applies a configuration read again (SIGHUP, systemctl reload) to the running
// daemon without touching maintenance mode, the verdicts or the agent-check state:
//   - every check's timeout, success-ttl and failure-ttl from [lbagent] (checks whose
//     component sets its own keep it), from the check's next run;
//   - db.properties: the serverconf check reconnects with the new settings at its next run.
//
// Settings that take effect only at a restart (listen addresses, connection caps and rates,
// timeouts of the public ports, the set of checks, role, maintenance-state-file, max-procs,
// status-token, balancers) keep their running values; Reload returns the names of those that
// differ, for the caller to log.
func (a *Agent) Reload(cfg Config) (needRestart []string) {
	a.reload.Lock()
	defer a.reload.Unlock()
	for i, own := range a.ownTiming {
		t := own
		if t.Timeout == 0 {
			t.Timeout = cfg.Timeout
		}
		if t.PassTTL == 0 {
			t.PassTTL = cfg.PassTTL
		}
		if t.FailTTL == 0 {
			t.FailTTL = cfg.FailTTL
		}
		a.specs[i].Timeout, a.specs[i].PassTTL, a.specs[i].FailTTL = t.Timeout, t.PassTTL, t.FailTTL
		if a.runner != nil {
			a.runner.SetTiming(i, t)
		}
	}
	a.cfg.Redactor.Add(cfg.ServerConf.Password) // masked before it can show anywhere
	a.serverconf.Use(cfg.ServerConf)

	old := a.cfg
	for _, d := range []struct {
		name     string
		old, new any
	}{
		{"[proxy] health-check-interface/health-check-port", old.Health, cfg.Health},
		{"[node] type", old.Role, cfg.Role},
		{"[proxy] memory-usage-threshold", old.MemoryThreshold, cfg.MemoryThreshold},
		{"[lbagent] tcp-checks", old.TCPChecks, cfg.TCPChecks},
		{"[lbagent] maintenance-state-file", old.MaintenanceStateFile, cfg.MaintenanceStateFile},
		{"[lbagent] max-procs", old.MaxProcs, cfg.MaxProcs},
		{"[lbagent] max-connections, max-connections-per-ip, max-rate-per-ip", old.Limits(), cfg.Limits()},
		{"[lbagent] read-timeout, idle-timeout", []any{old.ReadTimeout, old.IdleTimeout}, []any{cfg.ReadTimeout, cfg.IdleTimeout}},
		{"[lbagent] status-token", old.StatusToken, cfg.StatusToken},
		{"[agent-check] balancers", fmt.Sprint(old.Balancers), fmt.Sprint(cfg.Balancers)},
	} {
		if !reflect.DeepEqual(d.old, d.new) {
			needRestart = append(needRestart, d.name)
		}
	}
	return needRestart
}

// Checks are the checks with the timing each runs with now (the reload's log line).
func (a *Agent) Checks() []check.Spec {
	if a.runner == nil {
		return append([]check.Spec(nil), a.specs...)
	}
	return a.runner.Specs()
}
