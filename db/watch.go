package db

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
)

// CheckName is the name of the replication check in /status and metrics.
const CheckName = "Server conf replication status"

// CheckError is a failed Check: Message is the text for the load balancer's detailed view,
// Cause (may be nil) what went wrong underneath.
type CheckError struct {
	Message string
	Cause   error
}

func (e *CheckError) Error() string { return e.Message }
func (e *CheckError) Unwrap() error { return e.Cause }

// WatchStatus is the watcher's last observation of the local standby.
type WatchStatus struct {
	Standby
	Up       bool          `json:"up"` // the last check could query the standby
	Checked  time.Time     `json:"checked,omitzero"`
	Error    string        `json:"error,omitempty"` // the check's message, empty when fine (and before the first check)
	LagLimit string        `json:"lag_limit"`
	Took     time.Duration `json:"-"`
}

// Watcher watches the serverconf standby on a secondary for the agent: Check is the health
// check, Status the last observation, and it is a prometheus.Collector of
// lbagent_replication_* metrics. One connection is kept and re-opened after errors.
type Watcher struct {
	target   Conn
	limit    LagLimit
	interval time.Duration
	clock    clockwork.Clock

	mu   sync.Mutex // serializes checks and guards conn
	conn *pgx.Conn

	smu  sync.RWMutex
	last WatchStatus

	descUp, descStreaming, descPaused, descLagBytes, descLagSeconds *prometheus.Desc
	descReceive, descReplay, descLastReplay, descChecked            *prometheus.Desc
}

// NewWatcher watches the standby reached through target (on a secondary: the local
// serverconf instance, with a user that has pg_monitor; lbagent db setup primary grants it).
func NewWatcher(target Conn, cfg Config) *Watcher {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("lbagent_replication_"+name, help, nil, nil)
	}
	return &Watcher{
		target: target, limit: cfg.LagLimit, interval: cfg.Interval, clock: realClock,
		last:           WatchStatus{LagLimit: cfg.LagLimit.String()},
		descUp:         d("up", "1 when the last check could query the local serverconf standby."),
		descStreaming:  d("streaming", "1 when the WAL receiver is streaming from the primary."),
		descPaused:     d("paused", "1 when WAL replay is paused (or a pause is requested)."),
		descLagBytes:   d("lag_bytes", "WAL received but not yet replayed, in bytes."),
		descLagSeconds: d("lag_seconds", "Age of the last replayed transaction while replay is behind; 0 when caught up."),
		descReceive:    d("receive_lsn_bytes", "Last WAL position received from the primary, as a byte offset."),
		descReplay:     d("replay_lsn_bytes", "Last WAL position replayed, as a byte offset."),
		descLastReplay: d("last_replay_timestamp_seconds", "Commit time of the last replayed transaction (Unix seconds)."),
		descChecked:    d("last_check_timestamp_seconds", "When the last check finished (Unix seconds)."),
	}
}

// Check queries the standby. It returns nil when the standby is streaming, not paused (or
// paused within a configured lag limit) and within the lag limit; otherwise a *CheckError
// whose text is the message for the load balancer's detailed view.
func (w *Watcher) Check(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := w.clock.Now()
	s, err := w.query(ctx)
	st := WatchStatus{Up: err == nil, Checked: w.clock.Now(), LagLimit: w.limit.String()}
	st.Took = st.Checked.Sub(start)
	if s != nil {
		st.Standby = *s
	}
	if err == nil {
		err = w.judge(s)
	} else {
		err = w.failure(err)
	}
	if err != nil {
		st.Error = err.Error()
	}
	w.smu.Lock()
	w.last = st
	w.smu.Unlock()
	return err
}

func (w *Watcher) query(ctx context.Context) (*Standby, error) {
	if w.conn == nil || w.conn.IsClosed() {
		c, err := w.target.Connect(ctx)
		if err != nil {
			return nil, err
		}
		w.conn = c
	}
	s, err := StandbyStatus(ctx, w.conn)
	if err != nil && !errors.Is(err, ErrNotStandby) {
		_ = w.conn.Close(context.WithoutCancel(ctx))
		w.conn = nil
	}
	return s, err
}

func (w *Watcher) failure(err error) error {
	if errors.Is(err, ErrNotStandby) {
		return &CheckError{"Server conf database is not a replication standby", err}
	}
	return &CheckError{"Server conf replication status unavailable", err}
}

func (w *Watcher) judge(s *Standby) error {
	switch {
	case !s.Streaming:
		return &CheckError{Message: fmt.Sprintf("Server conf replication is not streaming (WAL receiver: %s)", orNone(s.ReceiverState))}
	case w.limit.Exceeded(s):
		return &CheckError{Message: fmt.Sprintf("Server conf replication lag %d bytes, %.0fs exceeds the limit %s",
			s.LagBytes, s.LagSeconds, w.limit)}
	case s.Paused && w.limit.IsZero():
		return &CheckError{Message: fmt.Sprintf("Server conf replication is paused (lag %d bytes)", s.LagBytes)}
	}
	return nil
}

// Status returns the last observation (JSON-marshalable).
func (w *Watcher) Status() WatchStatus {
	w.smu.RLock()
	defer w.smu.RUnlock()
	return w.last
}

// Close closes the watcher's connection.
func (w *Watcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close(context.Background())
	w.conn = nil
	return err
}

// Describe implements prometheus.Collector.
func (w *Watcher) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{w.descUp, w.descStreaming, w.descPaused, w.descLagBytes,
		w.descLagSeconds, w.descReceive, w.descReplay, w.descLastReplay, w.descChecked} {
		ch <- d
	}
}

// Collect implements prometheus.Collector from the last observation; it never queries.
func (w *Watcher) Collect(ch chan<- prometheus.Metric) {
	s := w.Status()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(w.descUp, b2f(s.Up))
	g(w.descStreaming, b2f(s.Streaming))
	g(w.descPaused, b2f(s.Paused))
	g(w.descLagBytes, float64(s.LagBytes))
	g(w.descLagSeconds, s.LagSeconds)
	g(w.descReceive, float64(s.ReceiveLSN))
	g(w.descReplay, float64(s.ReplayLSN))
	if !s.LastReplay.IsZero() {
		g(w.descLastReplay, float64(s.LastReplay.UnixNano())/1e9)
	}
	if !s.Checked.IsZero() {
		g(w.descChecked, float64(s.Checked.UnixNano())/1e9)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
