package main

import (
	"context"

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
		Name:       "replication",
		Checks:     []check.Spec{w.Spec()},
		Status:     func() any { return w.Status() },
		Collectors: []prometheus.Collector{w},
		Run: func(ctx context.Context) error {
			<-ctx.Done()
			return w.Close()
		},
	}, nil
}
