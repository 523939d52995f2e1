package lbadapters

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/agent/verdict"
	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/sync/confsync"
)

// serveStatus serves a /status document rendered by the agent's own healthport.BuildStatus
// with the given components, on a loopback listener, and returns the node to read it from.
func serveStatus(t *testing.T, role string, components map[string]func() any) Node {
	t.Helper()
	st := healthport.BuildStatus(verdict.NewStore(role, nil).Load(), time.Now(), components, false)
	body, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != healthport.PathStatus {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/health+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return Node{Name: "ss2", Address: host, HealthPort: p}
}

// TestAgentStatusComponents decodes the secondary's components from the types the agent
// really renders (db.WatchStatus, sync.Status), so a renamed JSON field there fails here.
func TestAgentStatusComponents(t *testing.T) {
	last := time.Date(2025, 3, 10, 11, 42, 1, 0, time.UTC)
	age := 3.5
	n := serveStatus(t, "secondary", map[string]func() any{
		"replication": func() any {
			return db.WatchStatus{Standby: db.Standby{Streaming: true, Paused: true, LagBytes: 12800, LagSeconds: 4.2},
				Up: true, Error: "Server conf replication is paused (lag 12800 bytes)"}
		},
		"sync": func() any {
			return confsync.Status{Paused: true, Connected: false, LastSuccess: &last, AgeSeconds: &age,
				Warning: "Config sync is paused (/var/tmp/xroad/sync-disabled exists)"}
		},
	})
	got, err := HTTPAgent{}.Status(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	wantRepl := ReplicationStatus{Up: true, Streaming: true, Paused: true, LagBytes: 12800, LagSeconds: 4.2,
		Error: "Server conf replication is paused (lag 12800 bytes)"}
	if r := got.Components.Replication; r == nil || *r != wantRepl {
		t.Errorf("replication: got %+v; want %+v", r, wantRepl)
	}
	y := got.Components.Sync
	if y == nil || !y.Paused || y.Connected || y.LastSuccess == nil || !y.LastSuccess.Equal(last) ||
		y.AgeSeconds == nil || *y.AgeSeconds != age || y.Warning != "Config sync is paused (/var/tmp/xroad/sync-disabled exists)" {
		t.Errorf("sync: got %+v; want paused, last success %s, age %v", y, last, age)
	}
}

// TestAgentStatusPrimaryHasNoComponents: a primary shows neither part, and lbadapter's
// JSON then has no "components" object.
func TestAgentStatusPrimaryHasNoComponents(t *testing.T) {
	n := serveStatus(t, "primary", nil)
	got, err := HTTPAgent{}.Status(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if got.Components.Replication != nil || got.Components.Sync != nil {
		t.Errorf("components: got %+v; want none", got.Components)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"components"`) {
		t.Errorf("json %s; want no components", b)
	}
}
