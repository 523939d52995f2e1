// Package verdict holds the node's current health verdict: an immutable snapshot built from
// the latest check results, the maintenance flag and the node's role, that every front end
// (health port, agent-check, /status, metrics, pushes to a balancer) renders.
package verdict

import (
	"time"

	"github.com/xroad-lb/lbkit/agent/check"
)

// MaintenanceMessage is X-Road's answer body (without the newline) in maintenance mode.
const MaintenanceMessage = "Health check interface is in maintenance mode."

// State is the node's overall state.
type State string

const (
	Healthy     State = "healthy"     // every critical check passes
	Unhealthy   State = "unhealthy"   // a critical check fails or has not run yet
	Maintenance State = "maintenance" // maintenance mode, whatever the checks say
)

// Verdict is one immutable snapshot. Never modify a Verdict obtained from a Store.
type Verdict struct {
	Seq         uint64 // increases with every snapshot
	Time        time.Time
	Role        string // primary, secondary or standalone
	Maintenance bool
	Checks      []check.Result // in the configured order (X-Road's order first)

	State   State
	Reason  string // the first failing critical check's message, or the maintenance text
	Warning bool   // some warning-severity check fails

	// HTTPStatus and HTTPBody are the X-Road health port's answer, computed once here so a
	// probe only loads a pointer and writes them.
	HTTPStatus int
	HTTPBody   []byte
}

// build fills the derived fields.
func build(seq uint64, now time.Time, role string, maintenance bool, checks []check.Result) *Verdict {
	v := &Verdict{Seq: seq, Time: now, Role: role, Maintenance: maintenance, Checks: checks}
	for _, c := range checks {
		if c.Severity == check.Warning {
			if c.Status == check.StatusWarn {
				v.Warning = true
			}
			continue
		}
		if c.Status != check.StatusPass && v.Reason == "" {
			v.Reason = c.Message
			if c.Status == check.StatusPending {
				v.Reason = check.PendingMessage(c.Name)
			}
		}
	}
	switch {
	case maintenance:
		v.State, v.Reason = Maintenance, MaintenanceMessage
		v.HTTPStatus, v.HTTPBody = 503, []byte(MaintenanceMessage+"\n")
	case v.Reason != "":
		v.State = Unhealthy
		v.HTTPStatus, v.HTTPBody = 500, []byte(v.Reason+"\n")
	default:
		v.State = Healthy
		v.HTTPStatus, v.HTTPBody = 200, nil
	}
	return v
}

// Healthy reports whether the balancer should send new traffic to the node.
func (v *Verdict) Healthy() bool { return v.State == Healthy }

// Check returns the result of the named check, or false.
func (v *Verdict) Check(name string) (check.Result, bool) {
	for _, c := range v.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return check.Result{}, false
}

// SameAnswer reports whether two verdicts give the balancer the same answer.
func SameAnswer(a, b *Verdict) bool {
	return a != nil && b != nil && a.State == b.State && a.Reason == b.Reason
}
