package healthport

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

// Status is the /status document, in the shape of the IETF draft "Health Check Response
// Format for HTTP APIs" (application/health+json) with lbagent's own fields added.
type Status struct {
	Status      string                   `json:"status"` // pass, warn or fail
	State       verdict.State            `json:"state"`  // healthy, unhealthy or maintenance
	Output      string                   `json:"output,omitempty"`
	Role        string                   `json:"role"`
	Maintenance bool                     `json:"maintenance"`
	Time        time.Time                `json:"time"`
	Checks      map[string][]CheckStatus `json:"checks"`
	Order       []string                 `json:"checkOrder"`
	Components  map[string]any           `json:"components,omitempty"`
}

// CheckStatus is one check in /status.
type CheckStatus struct {
	ComponentID   string  `json:"componentId"`
	ComponentType string  `json:"componentType"`
	Status        string  `json:"status"` // pass, warn, fail or pending
	Output        string  `json:"output,omitempty"`
	Detail        string  `json:"detail,omitempty"`
	Time          string  `json:"time,omitempty"` // when the result was taken
	ObservedValue float64 `json:"observedValue"`  // duration of the run
	ObservedUnit  string  `json:"observedUnit"`
	AgeSeconds    float64 `json:"ageSeconds"`
	AffectsHealth bool    `json:"affectsHealth"`
	Runs          uint64  `json:"runs"`
	Failures      uint64  `json:"failures"`
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// publicKeys are the component fields that the health port's /status shows to anyone: states,
// numbers and check messages a balancer's operator needs (lbadapter status reads them), never
// an address, a user or a cause ("error" and "warning" carry the check's message only).
var publicKeys = map[string]bool{
	"up": true, "streaming": true, "paused": true, "lag_bytes": true, "lag_seconds": true, "error": true,
	"connected": true, "last_success": true, "age_seconds": true, "warning": true, "phase": true, "line": true,
	"lbagent": true, "xroad": true, // components.version, read by lbadapter upgrade
}

// publicView keeps a component document's public fields.
func publicView(doc any) any {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	for k := range m {
		if !publicKeys[k] {
			delete(m, k)
		}
	}
	return m
}

// BuildStatus renders a verdict as the /status document. Without full it leaves out what only
// the node's own admin should see: the checks' causes and the components' addresses, paths and
// errors.
func BuildStatus(v *verdict.Verdict, now time.Time, components map[string]func() any, full bool) Status {
	st := Status{State: v.State, Role: v.Role, Maintenance: v.Maintenance, Time: v.Time.UTC(),
		Checks: make(map[string][]CheckStatus, len(v.Checks))}
	switch {
	case v.State != verdict.Healthy:
		st.Status, st.Output = "fail", v.Reason
	case v.Warning:
		st.Status = "warn"
	default:
		st.Status = "pass"
	}
	for _, c := range v.Checks {
		cs := CheckStatus{
			ComponentID:   strings.Trim(nonWord.ReplaceAllString(strings.ToLower(c.Name), "-"), "-"),
			ComponentType: "system",
			Status:        string(c.Status),
			Output:        c.Message,
			Detail:        c.Detail,
			ObservedValue: float64(c.Duration.Microseconds()) / 1000,
			ObservedUnit:  "ms",
			AffectsHealth: c.Severity == check.Critical,
			Runs:          c.Runs,
			Failures:      c.Failures,
		}
		if c.Status == check.StatusPass {
			cs.Output = ""
		}
		if !full {
			cs.Detail = ""
		}
		if !c.Started.IsZero() {
			end := c.Started.Add(c.Duration)
			cs.Time = end.UTC().Format(time.RFC3339Nano)
			cs.AgeSeconds = now.Sub(end).Seconds()
		}
		st.Checks[c.Name] = []CheckStatus{cs}
		st.Order = append(st.Order, c.Name)
	}
	if len(components) > 0 {
		st.Components = make(map[string]any, len(components))
		for name, f := range components {
			if full {
				st.Components[name] = f()
			} else {
				st.Components[name] = publicView(f())
			}
		}
	}
	return st
}

// answerWriteTimeout bounds writing the larger answers (/status, /metrics), which the
// server applies per request only there.
const answerWriteTimeout = 10 * time.Second

// ServeStatus answers /status; full adds the details (the admin port, or the status token).
func (s *Server) ServeStatus(ctx *fasthttp.RequestCtx, full bool) {
	_ = ctx.SetWriteDeadline(time.Now().Add(answerWriteTimeout))
	st := BuildStatus(s.store.Load(), s.clock.Now(), s.components, full)
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		ctx.Error("status: "+err.Error(), 500)
		return
	}
	ctx.Response.Header.SetContentType("application/health+json")
	if st.Status == "fail" {
		ctx.SetStatusCode(503)
	}
	ctx.SetBody(s.redactor.Bytes(append(b, '\n')))
}
