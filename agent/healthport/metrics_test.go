package healthport

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/redact"
)

// TestMetrics: /metrics is Prometheus text whatever the client asks for (a protobuf or gzip
// answer could not be redacted), with lbagent's metric names and labels, and secrets masked.
func TestMetrics(t *testing.T) {
	st := newStore()
	st.SetResult(1, check.Result{Name: "Server conf database status", Status: check.StatusPass, Runs: 4})
	var red redact.Redactor
	red.Add("s3cret-pw")
	reg := prometheus.NewRegistry()
	s := New(st, Options{Redactor: &red, Gatherer: reg})
	reg.MustRegister(NewCollector(st, s))
	leak := prometheus.NewGauge(prometheus.GaugeOpts{Name: "lbagent_test_info", Help: "Carries a secret.",
		ConstLabels: prometheus.Labels{"dsn": "postgres://serverconf:s3cret-pw@127.0.0.1/serverconf"}})
	leak.Set(1)
	reg.MustRegister(leak)
	do(s, "GET", "/") // one plain answer: 500 (a check is pending)

	for _, accept := range []string{"", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
		"application/openmetrics-text;version=1.0.0"} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/metrics")
		ctx.Request.Header.Set("Accept", accept)
		ctx.Request.Header.Set("Accept-Encoding", "gzip")
		s.Handle(&ctx)
		body := string(ctx.Response.Body())
		ctype := string(ctx.Response.Header.ContentType())
		if code := ctx.Response.StatusCode(); code != 200 || !strings.HasPrefix(ctype, "text/plain; version=0.0.4") ||
			len(ctx.Response.Header.Peek("Content-Encoding")) != 0 {
			t.Errorf("Accept %q: got %d %q encoding %q; want 200 text/plain version 0.0.4, not compressed", accept, code, ctype,
				ctx.Response.Header.Peek("Content-Encoding"))
		}
		for _, want := range []string{
			"# HELP lbagent_healthy 1 when the node takes new traffic (all critical checks pass, not in maintenance).\n# TYPE lbagent_healthy gauge\nlbagent_healthy 0\n",
			"lbagent_maintenance 0\n",
			`lbagent_check_up{check="Server conf database status",severity="critical"} 1` + "\n",
			`lbagent_check_up{check="Config sync status",severity="warning"} 0` + "\n",
			`lbagent_check_runs_total{check="Server conf database status"} 4` + "\n",
			`lbagent_check_duration_seconds{check="Global conf validity"} 0` + "\n",
			`lbagent_check_failures_total{check="Global conf validity"} 0` + "\n",
			`lbagent_check_abandoned_runs{check="Global conf validity"} 0` + "\n",
			`lbagent_health_answers_total{code="500"} 1` + "\n",
			`lbagent_health_answers_total{code="200"} 0` + "\n",
			`lbagent_test_info{dsn="postgres://serverconf:` + redact.Mask + `@127.0.0.1/serverconf"} 1` + "\n",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("Accept %q: /metrics lacks %q:\n%s", accept, want, body)
			}
		}
		if strings.Contains(body, "s3cret") {
			t.Errorf("Accept %q: /metrics shows the secret:\n%s", accept, body)
		}
	}
}
