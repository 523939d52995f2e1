package lbadapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// AgentStatus is the part of lbagent's /status document that lbadapter shows.
type AgentStatus struct {
	Status      string                   `json:"status"` // pass, warn or fail
	State       string                   `json:"state"`  // healthy, unhealthy or maintenance
	Output      string                   `json:"output"` // why, when not healthy
	Role        string                   `json:"role"`
	Maintenance bool                     `json:"maintenance"`
	Time        time.Time                `json:"time"`
	Checks      map[string][]CheckStatus `json:"checks,omitempty"`
	Components  AgentComponents          `json:"components,omitzero"`
}

// AgentComponents are the parts of /status "components" that lbadapter shows. Both are
// absent (nil) on a primary or standalone node, and on a secondary without that part.
type AgentComponents struct {
	Replication *ReplicationStatus `json:"replication,omitempty"`
	Sync        *SyncStatus        `json:"sync,omitempty"`
	Version     *VersionStatus     `json:"version,omitempty"`
}

// VersionStatus is components.version: lbagent's own version and the X-Road version it
// sees on the node ("" when unknown).
type VersionStatus struct {
	LBAgent string `json:"lbagent"`
	XRoad   string `json:"xroad"`
}

// ReplicationStatus is the secondary's serverconf replication watch (components.replication).
type ReplicationStatus struct {
	Up         bool    `json:"up"` // the watch could query the local standby
	Streaming  bool    `json:"streaming"`
	Paused     bool    `json:"paused"`
	LagBytes   int64   `json:"lag_bytes"`   // WAL received but not yet replayed
	LagSeconds float64 `json:"lag_seconds"` // age of the last replayed transaction while behind
	Error      string  `json:"error,omitempty"`
}

// SyncStatus is the secondary's config sync worker (components.sync).
type SyncStatus struct {
	Paused      bool       `json:"paused"`
	Connected   bool       `json:"connected"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	AgeSeconds  *float64   `json:"age_seconds,omitempty"` // since the last success; nil before one
	LastError   string     `json:"last_error,omitempty"`
	Warning     string     `json:"warning,omitempty"`
}

// CheckStatus is one entry of the /status document's checks.
type CheckStatus struct {
	Status        string  `json:"status"`
	Output        string  `json:"output,omitempty"`
	ObservedValue float64 `json:"observedValue,omitempty"`
	ObservedUnit  string  `json:"observedUnit,omitempty"`
	AffectsHealth bool    `json:"affectsHealth"`
}

// Agent states, as /status reports them.
const (
	AgentHealthy     = "healthy"
	AgentUnhealthy   = "unhealthy"
	AgentMaintenance = "maintenance"
)

// ErrNotReady is wrapped by Ready when a node's agent does not report it healthy.
var ErrNotReady = errors.New("node not ready")

// DefaultAgentTimeout bounds one /status request.
const DefaultAgentTimeout = 2 * time.Second

// HTTPAgent reads lbagent's /status from the node's health port.
type HTTPAgent struct {
	Timeout time.Duration // per request; default DefaultAgentTimeout
	Client  *http.Client  // default a client without proxies
}

// StatusURL is the node's /status address.
func StatusURL(n Node) string {
	return "http://" + net.JoinHostPort(n.Address, strconv.Itoa(n.HealthPort)) + "/status"
}

// Status fetches and decodes the node's /status document.
func (a HTTPAgent) Status(ctx context.Context, n Node) (AgentStatus, error) {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultAgentTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := a.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	}
	url := StatusURL(n)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return AgentStatus{}, fmt.Errorf("agent %s: %w", n.Name, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return AgentStatus{}, fmt.Errorf("agent %s unreachable at %s: %s", n.Name, url, netCause(err, timeout))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return AgentStatus{}, fmt.Errorf("agent %s: read %s: %w", n.Name, url, err)
	}
	var s AgentStatus
	if err := json.Unmarshal(body, &s); err != nil || s.State == "" {
		return AgentStatus{}, fmt.Errorf("agent %s: %s answered %d without a status document", n.Name, url, resp.StatusCode)
	}
	return s, nil
}

// AgentReader is what Ready and Status need from the nodes' agents.
type AgentReader interface {
	Status(ctx context.Context, n Node) (AgentStatus, error)
}

// Ready returns nil when the node's agent reports it healthy, else an error wrapping
// ErrNotReady that says why (maintenance mode, a failing check, agent unreachable).
func Ready(ctx context.Context, a AgentReader, n Node) error {
	s, err := a.Status(ctx, n)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	switch s.State {
	case AgentHealthy:
		return nil
	case AgentMaintenance:
		return fmt.Errorf("%w: %s is in maintenance mode (lbagent maintenance off on the node)", ErrNotReady, n.Name)
	default:
		return fmt.Errorf("%w: %s is %s: %s", ErrNotReady, n.Name, s.State, s.Output)
	}
}

// netCause is a short reason for a failed request: the network error's own text
// ("connect: connection refused") or the timeout.
func netCause(err error, timeout time.Duration) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}
