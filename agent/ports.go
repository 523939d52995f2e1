package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xroad-lb/lbkit/agent/connlimit"
	"github.com/xroad-lb/lbkit/agent/ratelog"
)

// portCollector exports the public ports' connection counts and bad-request count.
type portCollector struct {
	lim                                                               *connlimit.Limiter
	log                                                               *ratelog.Logger
	open, accepted, refused, evicted, acceptErrors, httpErrors, limit *prometheus.Desc
}

func newPortCollector(lim *connlimit.Limiter, log *ratelog.Logger) *portCollector {
	return &portCollector{lim: lim, log: log,
		open:         prometheus.NewDesc("lbagent_connections_open", "Connections open on the health and agent-check ports.", nil, nil),
		limit:        prometheus.NewDesc("lbagent_connections_limit", "Connection caps of the health and agent-check ports.", []string{"cap"}, nil),
		accepted:     prometheus.NewDesc("lbagent_connections_accepted_total", "Connections admitted on the health and agent-check ports.", nil, nil),
		refused:      prometheus.NewDesc("lbagent_connections_refused_total", "Connections (and keep-alive requests, reason rate) refused at once, by the cap that refused them.", []string{"reason"}, nil),
		evicted:      prometheus.NewDesc("lbagent_connections_evicted_total", "Idle connections closed to make room for new ones.", nil, nil),
		acceptErrors: prometheus.NewDesc("lbagent_accept_errors_total", "Failed accepts (e.g. too many open files), each retried after a backoff.", nil, nil),
		httpErrors:   prometheus.NewDesc("lbagent_http_errors_total", "Malformed or refused HTTP requests on the health and admin ports (logged once per interval).", nil, nil),
	}
}

func (c *portCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.limit, c.accepted, c.refused, c.evicted, c.acceptErrors, c.httpErrors} {
		ch <- d
	}
}

func (c *portCollector) Collect(ch chan<- prometheus.Metric) {
	st, l := c.lim.Stats(), c.lim.Limits()
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(l.Max), "max")
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(l.PerIP), "per_ip")
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(l.Reserved), "reserved_for_balancers")
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(max(l.RatePerIP, 0)), "rate_per_ip")
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(st.Accepted))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.RefusedPerIP), "per_ip")
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.RefusedFull), "full")
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.RefusedRate), "rate")
	ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(st.Evicted))
	ch <- prometheus.MustNewConstMetric(c.acceptErrors, prometheus.CounterValue, float64(st.AcceptErrors))
	ch <- prometheus.MustNewConstMetric(c.httpErrors, prometheus.CounterValue, float64(c.log.Total()))
}
