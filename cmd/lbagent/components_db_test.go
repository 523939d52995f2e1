package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/db"
)

func TestReplicationSpec(t *testing.T) {
	cause := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	fail := &db.CheckError{Message: "Server conf replication status unavailable", Cause: cause}
	run := func(err error) func(context.Context) error {
		return func(context.Context) error { return err }
	}
	tests := []struct {
		name   string
		cfg    db.Config
		err    error
		sev    check.Severity
		result error
	}{
		{"no lag limit: warning", db.Config{Interval: 5 * time.Second}, nil, check.Warning, nil},
		{"lag limit: critical", db.Config{LagLimit: db.LagLimit{Bytes: 1}}, nil, check.Critical, nil},
		{"plain error passes through", db.Config{}, cause, check.Warning, cause},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := replicationSpec(run(tt.err), tt.cfg)
			if s.Name != db.CheckName || s.Severity != tt.sev || s.PassTTL != tt.cfg.Interval || s.FailTTL != tt.cfg.Interval {
				t.Errorf("spec %+v; want name %q severity %v TTLs %v", s, db.CheckName, tt.sev, tt.cfg.Interval)
			}
			if got := s.Run(t.Context()); got != tt.result {
				t.Errorf("Run = %v; want %v", got, tt.result)
			}
		})
	}
	// A *db.CheckError becomes a check.Failure: the message for the balancer, the cause as
	// the detail.
	err := replicationSpec(run(fail), db.Config{}).Run(t.Context())
	f, ok := errors.AsType[*check.Failure](err)
	if !ok {
		t.Fatalf("Run = %T %v; want a *check.Failure", err, err)
	}
	if f.Message != "Server conf replication status unavailable" || f.Cause != cause {
		t.Errorf("failure %q (cause %v); want %q (cause %v)", f.Message, f.Cause, fail.Message, cause)
	}
}
