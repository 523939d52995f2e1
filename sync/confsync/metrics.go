package confsync

import "github.com/prometheus/client_golang/prometheus"

// Metrics returns a collector for the worker's lbagent_sync_* metrics.
func (w *Worker) Metrics() prometheus.Collector { return (*collector)(w) }

type collector Worker

var (
	descLastSuccess = prometheus.NewDesc("lbagent_sync_last_success_timestamp_seconds",
		"Unix time of the start of the last successful config sync pass (0 = none yet).", nil, nil)
	descAge = prometheus.NewDesc("lbagent_sync_age_seconds",
		"Seconds since the last successful config sync pass began (since start when none).", nil, nil)
	descPaused = prometheus.NewDesc("lbagent_sync_paused",
		"1 while the pause file exists.", nil, nil)
	descConnected = prometheus.NewDesc("lbagent_sync_connected",
		"1 while the SSH connection to the primary is open.", nil, nil)
	descPasses = prometheus.NewDesc("lbagent_sync_passes_total",
		"Config sync passes by result (ok, error, paused).", []string{"result"}, nil)
	descChanged = prometheus.NewDesc("lbagent_sync_files_changed_total",
		"Entries created, updated, deleted or re-attributed by sync passes.", nil, nil)
	descLastChanged = prometheus.NewDesc("lbagent_sync_last_files_changed",
		"Entries changed by the last successful pass.", nil, nil)
	descReceived = prometheus.NewDesc("lbagent_sync_received_bytes_total",
		"File bytes downloaded from the primary.", nil, nil)
	descDuration = prometheus.NewDesc("lbagent_sync_last_pass_duration_seconds",
		"Duration of the last pass.", nil, nil)
	descRefused = prometheus.NewDesc("lbagent_sync_refused_entries",
		"Entries on the primary refused by the last pass as unsafe (symlinks leaving the tree, special files).", nil, nil)
	descSkipped = prometheus.NewDesc("lbagent_sync_skipped_entries",
		"Files on the primary the last successful pass could not read (skipped; the rest was applied).", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLastSuccess, descAge, descPaused, descConnected, descPasses,
		descChanged, descLastChanged, descReceived, descDuration, descRefused, descSkipped} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	w := (*Worker)(c)
	w.mu.Lock()
	st, m, started := w.st, w.m, w.started
	now := w.clock.Now()
	w.mu.Unlock()
	last, age := 0.0, now.Sub(started).Seconds()
	if st.LastSuccess != nil {
		last = float64(st.LastSuccess.UnixNano()) / 1e9
		age = now.Sub(*st.LastSuccess).Seconds()
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	cnt := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	g(descLastSuccess, last)
	g(descAge, age)
	g(descPaused, b2f(st.Paused))
	g(descConnected, b2f(st.Connected))
	cnt(descPasses, float64(m.ok), "ok")
	cnt(descPasses, float64(m.failed), "error")
	cnt(descPasses, float64(m.paused), "paused")
	cnt(descChanged, float64(m.changed))
	g(descLastChanged, float64(st.FilesChanged))
	cnt(descReceived, float64(m.received))
	g(descDuration, m.lastDuration.Seconds())
	g(descRefused, float64(len(st.Refused)))
	g(descSkipped, float64(len(st.Skipped)))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
