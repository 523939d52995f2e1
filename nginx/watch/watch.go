// Package watch gives open-source nginx active, agent-driven health checks for stream
// upstreams: it polls every node's lbagent /lb line, as HAProxy's agent-check does, and keeps
// the nodes' server lines of nginx servers files down or weighted accordingly, never lifting
// an operator's drain.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/haproxy"
	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
)

// Defaults of Options.
const (
	DefaultInterval = time.Second
	DefaultFall     = 3
	DefaultRise     = 2
)

// Upstream is one servers file of an nginx: the nodes' server lines at Port.
type Upstream struct {
	Name  string // the balancer's name in the cluster config
	Nginx nginx.Instance
	File  string
	Port  int
}

// Options shape a Watcher.
type Options struct {
	Interval time.Duration // between polls; default DefaultInterval
	Fall     int           // failed polls (down, unreachable, garbage) before down; default DefaultFall
	Rise     int           // good polls before a down is lifted; default DefaultRise
	// Timeout bounds one poll of an agent; default the interval, at most 2s.
	Timeout time.Duration
	// Source is the local address the default Poll connects from (nil: the system's choice).
	// lbagent says "ready" once per balancer address: a watcher on a host whose address
	// another balancer also polls from gets its own.
	Source net.IP
	// Poll reads a node's /lb line; default an HTTP GET of http://ADDRESS:HEALTH-PORT/lb.
	Poll  func(ctx context.Context, n lbadapters.Node) ([]byte, error)
	Clock clockwork.Clock // default the real clock
	// Log receives every change and every error; may be nil.
	Log func(Event)
}

// Event is a change the watcher made or a failure it met.
type Event struct {
	Node     string // the node, for a node's change
	Upstream string // the balancer, for a file's change
	Change   string // "down", "up", "weight 50%", "reloaded"
	Reason   string // the agent's line, or why it failed
	Err      error  // a failure (nginx -t refused, a servers file without the node, ...)
}

func (e Event) String() string {
	switch {
	case e.Err != nil:
		return e.Err.Error()
	case e.Node != "":
		return fmt.Sprintf("%s: %s (agent: %s)", e.Node, e.Change, e.Reason)
	}
	return fmt.Sprintf("[%s]: %s", e.Upstream, e.Change)
}

// Watcher polls the agents and keeps the servers files.
type Watcher struct {
	nodes []lbadapters.Node
	ups   []Upstream
	o     Options
	state []nodeState
	// refused remembers contents nginx -t refused, so the same change is not retried (and
	// logged) every interval.
	refused map[string]string
	warned  map[string]bool
}

// New returns a watcher of the nodes on the upstreams. The state starts from the servers
// files: a node that lbadapter watch marked down stays down until its agent is good rise
// times (or says ready after its own drain).
func New(nodes []lbadapters.Node, ups []Upstream, o Options) (*Watcher, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Fall <= 0 {
		o.Fall = DefaultFall
	}
	if o.Rise <= 0 {
		o.Rise = DefaultRise
	}
	if o.Timeout <= 0 {
		o.Timeout = min(o.Interval, 2*time.Second)
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Poll == nil {
		d := &net.Dialer{}
		if o.Source != nil {
			d.LocalAddr = &net.TCPAddr{IP: o.Source}
		}
		client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: d.DialContext}}
		o.Poll = func(ctx context.Context, n lbadapters.Node) ([]byte, error) { return pollHTTP(ctx, client, n) }
	}
	w := &Watcher{nodes: nodes, ups: ups, o: o, state: make([]nodeState, len(nodes)),
		refused: map[string]string{}, warned: map[string]bool{}}
	for i, n := range nodes {
		st := nodeState{healthy: true, pct: 100}
		for _, u := range ups {
			f, _, err := nginx.ReadFile(u.File)
			if err != nil {
				return nil, fmt.Errorf("[balancer %q]: %w", u.Name, err)
			}
			if s := f.Find(n.Address, u.Port); s != nil && s.Agent {
				st.reason = s.Reason
				if r, err := haproxy.ParseAgentLine([]byte(s.Reason + "\n")); err == nil && (r.Admin == "drain" || r.Admin == "maint") {
					st.admin = true
				} else {
					st.healthy = false
				}
				break
			}
		}
		w.state[i] = st
	}
	return w, nil
}

// pollHTTP GETs the node's /lb line.
func pollHTTP(ctx context.Context, client *http.Client, n lbadapters.Node) ([]byte, error) {
	url := "http://" + net.JoinHostPort(n.Address, strconv.Itoa(n.HealthPort)) + "/lb"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, errors.New("unreachable: no answer in time")
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			return nil, fmt.Errorf("unreachable: %w", op.Err)
		}
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return nil, fmt.Errorf("read /lb: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/lb answered HTTP %d", resp.StatusCode)
	}
	return body, nil
}

// Run polls every interval until ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	t := w.o.Clock.NewTicker(w.o.Interval)
	defer t.Stop()
	for {
		w.Step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
		}
	}
}

// Step polls every agent once, all at once, and applies the result to the servers files:
// at most one nginx -t and one reload per nginx, and only when a file changes.
func (w *Watcher) Step(ctx context.Context) {
	answers := make([][]byte, len(w.nodes))
	errs := make([]error, len(w.nodes))
	var wg sync.WaitGroup
	for i, n := range w.nodes {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
			defer cancel()
			answers[i], errs[i] = w.o.Poll(pctx, n)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	for i, n := range w.nodes {
		before := w.state[i]
		w.state[i] = w.next(before, answers[i], errs[i])
		w.logChange(n, before, w.state[i])
	}
	w.apply(ctx)
}

func (w *Watcher) log(e Event) {
	if w.o.Log != nil {
		w.o.Log(e)
	}
}
