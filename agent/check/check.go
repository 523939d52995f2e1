// Package check runs health checks in the background, each on its own clock, and reports
// their results; a probe never runs or waits for a check.
package check

import (
	"context"
	"errors"
	"time"
)

// Func is one health check. A nil error is a pass; the error's text is the message the load
// balancer sees (use Fail to attach a cause for the detailed view).
type Func func(ctx context.Context) error

// Severity says what a failing check does to the node's verdict.
type Severity int

const (
	// Critical: a failure makes the node unhealthy (X-Road's checks).
	Critical Severity = iota
	// Warning: a failure is shown in /status and metrics but the node keeps serving
	// (sync age, replication lag: secondaries keep serving when the primary is away).
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "critical"
}

// Defaults are X-Road's numbers.
const (
	DefaultTimeout = 5 * time.Second
	DefaultPassTTL = 2 * time.Second
	DefaultFailTTL = 30 * time.Second
)

// Spec describes a check and its schedule.
type Spec struct {
	Name     string
	Run      Func
	Severity Severity
	Timeout  time.Duration // a run that takes longer is a failure; default 5 s
	PassTTL  time.Duration // a success is kept this long before the next run; default 2 s
	FailTTL  time.Duration // a failure is kept this long before the next run; default 30 s
}

func (s Spec) withDefaults() Spec {
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.PassTTL <= 0 {
		s.PassTTL = DefaultPassTTL
	}
	if s.FailTTL <= 0 {
		s.FailTTL = DefaultFailTTL
	}
	return s
}

// Status of a check result.
type Status string

const (
	StatusPending Status = "pending" // not run yet
	StatusPass    Status = "pass"
	StatusWarn    Status = "warn" // a Warning-severity check failed
	StatusFail    Status = "fail"
)

// Result is the outcome of one run. Results are values and never change once published.
type Result struct {
	Name     string
	Severity Severity
	Status   Status
	Message  string        // what the balancer sees; empty on pass
	Detail   string        // the cause, for /status and logs (may be empty)
	Started  time.Time     // when the run began (zero while pending)
	Duration time.Duration // how long it ran (the timeout, for a timed-out run)
	Runs     uint64        // runs so far, this one included
	Failures uint64        // failed runs so far
	// Abandoned is how many earlier runs were still stuck (past their timeout) when this
	// one ended; they are left behind and the check runs on fresh goroutines.
	Abandoned int
}

// OK reports whether the result lets the node serve (pass, or a warning).
func (r Result) OK() bool { return r.Status == StatusPass || r.Status == StatusWarn }

// Failure is an error whose text is the balancer's message and whose cause is kept for the
// detailed view.
type Failure struct {
	Message string
	Cause   error
}

// Fail returns a Failure with the given message and cause (cause may be nil).
func Fail(message string, cause error) error { return &Failure{Message: message, Cause: cause} }

func (f *Failure) Error() string { return f.Message }
func (f *Failure) Unwrap() error { return f.Cause }

// TimeoutMessage and PanicMessage are X-Road's texts for a check that timed out or threw.
func TimeoutMessage(name string) string {
	return "Fetching health check response timed out for: " + name
}

// PanicMessage is the message for a check that panicked (an exception in X-Road's words).
func PanicMessage(name string) string {
	return "Fetching health check response failed for: " + name
}

// PendingMessage is the message before a check's first result.
func PendingMessage(name string) string {
	return "Health check not yet completed for: " + name
}

// messageAndDetail splits a check error into the balancer's message and the cause's text.
func messageAndDetail(err error) (string, string) {
	var f *Failure
	if errors.As(err, &f) {
		if f.Cause != nil {
			return f.Message, f.Cause.Error()
		}
		return f.Message, ""
	}
	return err.Error(), ""
}
