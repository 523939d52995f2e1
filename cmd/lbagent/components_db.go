package main

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xroad-lb/lbkit/agent"
	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/db"
)

// replicationWatch watches serverconf replication on secondaries ("Server conf replication
// status": a warning unless [replication] lag-limit is set).
func replicationWatch(a *agent.Agent, _ zerologLogger) (*agent.Component, error) {
	cfg := a.Config()
	if cfg.Role != xroad.Secondary {
		return nil, nil
	}
	rcfg, err := db.LoadConfig(cfg.XRoadDir)
	if err != nil {
		return nil, err
	}
	sc := cfg.ServerConf
	w := db.NewWatcher(db.Conn{Host: sc.Host, Port: sc.Port, User: sc.User, Password: sc.Password,
		DBName: sc.Database, SSLMode: sc.Params["sslmode"], CAFile: sc.Params["sslrootcert"],
		CertFile: sc.Params["sslcert"], KeyFile: sc.Params["sslkey"]}, rcfg)
	return &agent.Component{
		Name:   "replication",
		Checks: []check.Spec{replicationSpec(w.Check, rcfg)},
		Status: func() any {
			st := w.Status()
			if st.Checked.IsZero() {
				st.Error = check.PendingMessage(db.CheckName)
			}
			return st
		},
		Collectors: []prometheus.Collector{w},
		Run: func(ctx context.Context) error {
			<-ctx.Done()
			return w.Close()
		},
	}, nil
}

// replicationSpec is the replication check for the runner: Warning unless a lag limit is
// configured, then Critical (secondaries keep serving when the primary is away unless told
// otherwise). It runs every [replication] interval after a pass and after a failure alike, so
// the lag shown in /status keeps moving; zero leaves the runner's defaults. A *db.CheckError
// becomes the balancer's message and its cause the detail.
func replicationSpec(run func(context.Context) error, cfg db.Config) check.Spec {
	sev := check.Warning
	if !cfg.LagLimit.IsZero() {
		sev = check.Critical
	}
	return check.Spec{Name: db.CheckName, Severity: sev, PassTTL: cfg.Interval, FailTTL: cfg.Interval,
		Run: func(ctx context.Context) error {
			err := run(ctx)
			if ce, ok := errors.AsType[*db.CheckError](err); ok {
				return check.Fail(ce.Message, ce.Cause)
			}
			return err
		}}
}
