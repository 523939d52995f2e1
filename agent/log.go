package agent

import (
	"context"

	"github.com/xroad-lb/lbkit/agent/connlimit"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

func (a *Agent) logStartup() {
	c := a.cfg
	var names []string
	for _, s := range a.runner.Specs() {
		names = append(names, s.Name)
	}
	ev := a.log.Info().Str("xroad_dir", c.XRoadDir).Strs("conf_files", c.ConfFiles).
		Str("role", string(c.Role)).Str("admin", a.AdminAddr()).
		Str("serverconf", c.ServerConf.String()).Str("db_properties", c.ServerConf.Path).
		Str("ocsp_cache", c.OCSPCacheDir).Strs("checks", names).
		Str("timeout", c.Timeout.String()).Str("success_ttl", c.PassTTL.String()).Str("failure_ttl", c.FailTTL.String())
	if len(a.healthLns) > 0 {
		ev = ev.Str("health", a.HealthAddr())
	} else {
		ev = ev.Str("health", "disabled ([proxy] health-check-port = 0)")
	}
	l := a.limiter.Limits()
	ev = ev.Int("max_connections", l.Max).Int("max_connections_per_ip", l.PerIP).Int("reserved_for_balancers", l.Reserved).
		Int("max_rate_per_ip", l.RatePerIP).Int("balancers", len(c.Balancers))
	if c.MaintenanceStateFile != "" {
		ev = ev.Str("maintenance_state_file", c.MaintenanceStateFile)
	}
	ev.Msg("lbagent started")
	if budget := connlimit.DefaultMax(); l.Max > budget {
		a.log.Warn().Int("max_connections", l.Max).Int("descriptor_budget", budget).
			Msg("[lbagent] max-connections is above what the open-file limit leaves: a connection flood can use up the descriptors, and checks then fail to open X-Road's files")
	}
	if c.HSMCheck {
		a.log.Warn().Msg("[proxy] hsm-health-check-enabled=true: the HSM check needs X-Road's signer and is not performed by lbagent")
	}
}

// logVerdicts logs every change of the balancer's answer, and every check that changes status.
func (a *Agent) logVerdicts(ctx context.Context) {
	prev, ch := a.store.Watch()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		var cur *verdict.Verdict
		cur, ch = a.store.Watch()
		for i, c := range cur.Checks {
			if i < len(prev.Checks) && prev.Checks[i].Status != c.Status {
				ev := a.log.Info()
				if !c.OK() {
					ev = a.log.Warn()
				}
				ev.Str("check", c.Name).Str("status", string(c.Status)).Str("was", string(prev.Checks[i].Status)).
					Str("reason", c.Message).Str("detail", c.Detail).Msg("check changed")
			}
		}
		if !verdict.SameAnswer(prev, cur) {
			ev := a.log.Info()
			if cur.State == verdict.Unhealthy {
				ev = a.log.Warn()
			}
			ev.Str("state", string(cur.State)).Str("was", string(prev.State)).Int("http_status", cur.HTTPStatus).
				Str("reason", cur.Reason).Msg("verdict changed")
		}
		prev = cur
	}
}
