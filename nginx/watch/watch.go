// Package watch gives open-source nginx active, agent-driven health checks for stream
// upstreams: it polls every node's lbagent /lb line, as HAProxy's agent-check does, and keeps
// the nodes' server lines of nginx servers files down or weighted accordingly, never lifting
// an operator's drain.
package watch

import (
	"bytes"
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

// nodeState is the agent-check state of one node, as HAProxy keeps it.
type nodeState struct {
	healthy    bool
	admin      bool // the agent said drain or maint, until it says ready
	pct        int  // the agent's weight, 100 when it never said
	fails, oks int
	reason     string // the last answer or failure
}

func (s nodeState) down() bool { return !s.healthy || s.admin || s.pct == 0 }

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

// next is the node's state after one poll.
func (w *Watcher) next(s nodeState, answer []byte, err error) nodeState {
	var r haproxy.AgentReply
	if err == nil {
		r, err = haproxy.ParseAgentLine(answer)
		if err != nil {
			err = fmt.Errorf("bad answer %q: %w", truncate(answer), err)
		}
	}
	fail := func(reason string) {
		s.oks, s.fails, s.reason = 0, s.fails+1, reason
		if s.healthy && s.fails >= w.o.Fall {
			s.healthy = false
		}
	}
	if err != nil {
		fail(err.Error())
		return s
	}
	line := r.String()
	switch r.Health {
	case "down", "stopped", "fail":
		fail(line)
	case "up":
		s.fails, s.oks = 0, s.oks+1
		if !s.healthy && s.oks >= w.o.Rise {
			s.healthy = true
		}
	}
	switch {
	case r.Admin == "drain" || r.Admin == "maint":
		s.admin = true
	case r.Admin == "ready":
		s.admin = false
	case r.Health == "up" && s.oks >= w.o.Rise:
		// lbagent says "ready" once per balancer address; another poller on the same host
		// (the Lua module, a second watcher) may have heard it. An agent that says "up"
		// without drain rise times in a row has left its maintenance: the watcher only ever
		// lifts its own down, never an operator's.
		s.admin = false
	}
	if r.WeightSet {
		s.pct = min(r.Weight, 100)
	}
	if r.Health != "down" && r.Health != "stopped" && r.Health != "fail" {
		s.reason = line
	}
	return s
}

func truncate(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

func (w *Watcher) logChange(n lbadapters.Node, a, b nodeState) {
	if w.o.Log == nil {
		return
	}
	switch {
	case a.down() != b.down() && b.down():
		w.o.Log(Event{Node: n.Name, Change: "down", Reason: b.reason})
	case a.down() != b.down():
		w.o.Log(Event{Node: n.Name, Change: "up", Reason: b.reason})
	case a.pct != b.pct && !b.down():
		w.o.Log(Event{Node: n.Name, Change: fmt.Sprintf("weight %d%%", b.pct), Reason: b.reason})
	}
}

// apply renders every servers file from the nodes' states and applies the changed ones, one
// nginx at a time.
func (w *Watcher) apply(ctx context.Context) {
	groups := map[nginx.Instance][]Upstream{}
	var order []nginx.Instance
	for _, u := range w.ups {
		if _, ok := groups[u.Nginx]; !ok {
			order = append(order, u.Nginx)
		}
		groups[u.Nginx] = append(groups[u.Nginx], u)
	}
	for _, in := range order {
		if err := w.applyNginx(ctx, in, groups[in]); err != nil && ctx.Err() == nil {
			w.log(Event{Err: err})
		}
	}
}

func (w *Watcher) applyNginx(ctx context.Context, in nginx.Instance, ups []Upstream) error {
	var changes []nginx.Change
	var names []string
	for _, u := range ups {
		unlock, err := nginx.Lock(u.File)
		if err != nil {
			return fmt.Errorf("[balancer %q]: %w", u.Name, err)
		}
		defer unlock()
		f, old, err := nginx.ReadFile(u.File)
		if err != nil {
			return fmt.Errorf("[balancer %q]: %w", u.Name, err)
		}
		w.render(u, f)
		data := f.Bytes()
		if !bytes.Equal(old, data) {
			if w.refused[u.File] == string(data) {
				continue // nginx -t refused exactly this; said so once
			}
			changes = append(changes, nginx.Change{Path: u.File, Old: old, New: data})
			names = append(names, u.Name)
		}
	}
	if len(changes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, lbadapters.DefaultNginxCallTimeout)
	defer cancel()
	if err := in.ApplyAll(ctx, changes); err != nil {
		if errors.Is(err, nginx.ErrRefused) {
			for _, c := range changes {
				w.refused[c.Path] = string(c.New)
			}
			return fmt.Errorf("%v: %w (files restored, nginx not reloaded; retried when the change differs)", names, err)
		}
		return fmt.Errorf("%v: %w", names, err)
	}
	for _, c := range changes {
		delete(w.refused, c.Path)
	}
	for _, n := range names {
		w.log(Event{Upstream: n, Change: "servers file changed, nginx -t passed, nginx reloaded"})
	}
	return nil
}

// render sets the nodes' server lines of one file: the watcher's down with the agent's
// reason, and while any node runs below 100%, every node's weight in hundredths.
func (w *Watcher) render(u Upstream, f *nginx.File) {
	scaled := false
	for _, st := range w.state {
		scaled = scaled || (st.pct > 0 && st.pct < 100)
	}
	for i, n := range w.nodes {
		s := f.Find(n.Address, u.Port)
		if s == nil {
			key := u.File + " " + n.Name
			if !w.warned[key] {
				w.warned[key] = true
				w.log(Event{Err: fmt.Errorf("[balancer %q]: servers file %s has no line for node %s (%s): not watched there",
					u.Name, u.File, n.Name, net.JoinHostPort(n.Address, strconv.Itoa(u.Port)))})
			}
			continue
		}
		st := w.state[i]
		// A node already down keeps the reason it went down for: a changing answer while
		// down rewrites nothing.
		if was := s.Agent; !was || !st.down() {
			s.Reason = ""
			if st.down() {
				s.Reason = st.reason
			}
		}
		s.Agent = st.down()
		if scaled {
			s.Scale(max(st.pct, 1))
		} else {
			s.Scale(-1)
		}
	}
}

func (w *Watcher) log(e Event) {
	if w.o.Log != nil {
		w.o.Log(e)
	}
}
