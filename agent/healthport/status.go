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

// BuildStatus renders a verdict as the /status document.
func BuildStatus(v *verdict.Verdict, now time.Time, components map[string]func() any) Status {
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
			st.Components[name] = f()
		}
	}
	return st
}

// answerWriteTimeout bounds writing the larger answers (/status, /metrics), which the
// server applies per request only there.
const answerWriteTimeout = 10 * time.Second

func (s *Server) serveStatus(ctx *fasthttp.RequestCtx) {
	_ = ctx.SetWriteDeadline(time.Now().Add(answerWriteTimeout))
	st := BuildStatus(s.store.Load(), s.now(), s.components)
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		ctx.Error("status: "+err.Error(), 500)
		return
	}
	ctx.Response.Header.SetContentType("application/health+json")
	if st.Status == "fail" {
		ctx.SetStatusCode(503)
	}
	ctx.SetBody(append(b, '\n'))
}
