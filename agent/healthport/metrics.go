package healthport

import (
	"bytes"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/redact"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

// metricsHandler serves g's metrics through promhttp.HandlerFor, in Prometheus text (whatever
// the client asks for: a protobuf or compressed answer could not be redacted), with red's
// secrets masked.
func metricsHandler(g prometheus.Gatherer, red *redact.Redactor) fasthttp.RequestHandler {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, DisableCompression: true})
	return fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Accept")
		r.Header.Del("Accept-Encoding")
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		for k, v := range rec.header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.code)
		_, _ = w.Write(red.Bytes(rec.body.Bytes()))
	}))
}

// recorder keeps a whole answer, for the redactor to see it at once.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) {
	_ = ctx.SetWriteDeadline(time.Now().Add(answerWriteTimeout)) // larger than a probe's answer
	s.metrics(ctx)
}

// Collector exports the verdict and the health port's answer counts as Prometheus metrics.
type Collector struct {
	store  *verdict.Store
	server *Server

	healthy, maintenance, checkStatus, checkDuration, checkRuns, checkFailures, checkAbandoned, answers *prometheus.Desc
}

// NewCollector returns a collector for store; server may be nil (no answer counts).
func NewCollector(store *verdict.Store, server *Server) *Collector {
	return &Collector{
		store: store, server: server,
		healthy:        prometheus.NewDesc("lbagent_healthy", "1 when the node takes new traffic (all critical checks pass, not in maintenance).", nil, nil),
		maintenance:    prometheus.NewDesc("lbagent_maintenance", "1 when maintenance mode is on.", nil, nil),
		checkStatus:    prometheus.NewDesc("lbagent_check_up", "1 when the check's latest result passes (warning-severity checks: 0 means warn).", []string{"check", "severity"}, nil),
		checkDuration:  prometheus.NewDesc("lbagent_check_duration_seconds", "Duration of the check's latest run.", []string{"check"}, nil),
		checkRuns:      prometheus.NewDesc("lbagent_check_runs_total", "Runs of the check.", []string{"check"}, nil),
		checkFailures:  prometheus.NewDesc("lbagent_check_failures_total", "Failed runs of the check.", []string{"check"}, nil),
		checkAbandoned: prometheus.NewDesc("lbagent_check_abandoned_runs", "Runs of the check stuck past their timeout and left behind (the check goes on with fresh runs).", []string{"check"}, nil),
		answers:        prometheus.NewDesc("lbagent_health_answers_total", "Answers of the X-Road health endpoint by HTTP status.", []string{"code"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.healthy, c.maintenance, c.checkStatus, c.checkDuration, c.checkRuns, c.checkFailures, c.checkAbandoned, c.answers} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	v := c.store.Load()
	ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, b2f(v.Healthy()))
	ch <- prometheus.MustNewConstMetric(c.maintenance, prometheus.GaugeValue, b2f(v.Maintenance))
	for _, r := range v.Checks {
		ch <- prometheus.MustNewConstMetric(c.checkStatus, prometheus.GaugeValue, b2f(r.Status == check.StatusPass), r.Name, r.Severity.String())
		ch <- prometheus.MustNewConstMetric(c.checkDuration, prometheus.GaugeValue, r.Duration.Seconds(), r.Name)
		ch <- prometheus.MustNewConstMetric(c.checkRuns, prometheus.CounterValue, float64(r.Runs), r.Name)
		ch <- prometheus.MustNewConstMetric(c.checkFailures, prometheus.CounterValue, float64(r.Failures), r.Name)
		ch <- prometheus.MustNewConstMetric(c.checkAbandoned, prometheus.GaugeValue, float64(r.Abandoned), r.Name)
	}
	if c.server != nil {
		ok, failed, maint := c.server.Answered()
		ch <- prometheus.MustNewConstMetric(c.answers, prometheus.CounterValue, float64(ok), "200")
		ch <- prometheus.MustNewConstMetric(c.answers, prometheus.CounterValue, float64(failed), "500")
		ch <- prometheus.MustNewConstMetric(c.answers, prometheus.CounterValue, float64(maint), "503")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
