package upgrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/lbadapters/remote"
)

// Defaults of the waits.
const (
	DefaultDrainTimeout  = 10 * time.Minute
	DefaultHealthTimeout = 10 * time.Minute
	DefaultEnableTimeout = 5 * time.Minute
	// SameVersionGrace is how long wait-healthy waits for a healthy node to report a version
	// other than before before it accepts the same one (the command had nothing to upgrade).
	SameVersionGrace = 15 * time.Second
)

// Remote runs commands on one node.
type Remote interface {
	Run(ctx context.Context, cmd string, stdout, stderr io.Writer) error
	Close() error
}

// Upgrader runs a plan.
type Upgrader struct {
	Config    *lbadapters.Config
	Balancers []lbadapters.Named
	Agent     lbadapters.AgentReader
	Dial      func(ctx context.Context, n lbadapters.Node) (Remote, error)
	Out       io.Writer // progress lines and the nodes' streamed output
	StatePath string
	// Stop asks the run to stop at the next safe point (between steps).
	Stop <-chan struct{}

	Poll                                      time.Duration   // default lbadapters.DefaultPoll
	DrainTimeout, HealthTimeout, EnableTimout time.Duration   // defaults above
	Clock                                     clockwork.Clock // nil = the real clock

	mu      sync.Mutex
	remotes map[string]Remote
}

// ErrStopped is wrapped by Run's error when it stopped at a safe point on request.
var ErrStopped = errors.New("stopped on request")

// StepError is a failed step: the run stopped there.
type StepError struct {
	Index int
	Step  Step
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d (%s: %s) failed: %v", e.Index+1, e.Step.Node, e.Step.Kind, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }

func (u *Upgrader) clock() clockwork.Clock {
	if u.Clock == nil {
		return clockwork.NewRealClock()
	}
	return u.Clock
}

func (u *Upgrader) poll() time.Duration {
	if u.Poll <= 0 {
		return lbadapters.DefaultPoll
	}
	return u.Poll
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close closes the SSH connections.
func (u *Upgrader) Close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, r := range u.remotes {
		_ = r.Close()
	}
	u.remotes = nil
}

// run runs cmd on the node, its output streamed with the node's prefix. A broken connection
// is redialled once.
func (u *Upgrader) run(ctx context.Context, n lbadapters.Node, cmd string, out io.Writer) error {
	for attempt := 0; ; attempt++ {
		r, err := u.remote(ctx, n)
		if err != nil {
			return err
		}
		w := &prefixWriter{w: u.Out, prefix: n.Name + " | ", tee: out}
		err = r.Run(ctx, cmd, w, w)
		w.Flush()
		var ee *remote.ExitError
		if err == nil || errors.As(err, &ee) || ctx.Err() != nil || attempt > 0 {
			return err
		}
		u.drop(n.Name)
	}
}

func (u *Upgrader) remote(ctx context.Context, n lbadapters.Node) (Remote, error) {
	u.mu.Lock()
	r, ok := u.remotes[n.Name]
	u.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := u.Dial(ctx, n)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.remotes == nil {
		u.remotes = map[string]Remote{}
	}
	u.remotes[n.Name] = r
	return r, nil
}

func (u *Upgrader) drop(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if r, ok := u.remotes[name]; ok {
		_ = r.Close()
		delete(u.remotes, name)
	}
}

// Run runs the steps of st from the first one not done, saving st after each. It returns nil
// when every step is done, a *StepError when one failed (the node stays as it is: drained),
// or an error wrapping ErrStopped when Stop was closed.
func (u *Upgrader) Run(ctx context.Context, st *State) error {
	total := len(st.Steps)
	for i := st.Next(); i < total; i++ {
		select {
		case <-u.Stop:
			return fmt.Errorf("%w before step %d of %d (%s: %s)", ErrStopped, i+1, total, st.Steps[i].Node, st.Steps[i].Kind)
		default:
		}
		s := &st.Steps[i]
		n, err := u.Config.Node(s.Node)
		if err != nil {
			return &StepError{Index: i, Step: *s, Err: err}
		}
		start := u.clock().Now()
		s.Start, s.Error, s.Note = start, "", ""
		note, err := u.step(ctx, st, n, *s)
		s.Took = u.clock().Since(start)
		if err != nil {
			s.Status, s.Error = Failed, err.Error()
		} else {
			s.Status, s.Note = Done, note
		}
		if i == total-1 && err == nil {
			st.Finished = u.clock().Now()
		}
		saveErr := st.Save(u.StatePath)
		result := "done"
		if err != nil {
			result = "FAILED"
		}
		line := fmt.Sprintf("[%2d/%d] %-6s %-14s %s in %s", i+1, total, s.Node, s.Kind, result, fmtDur(s.Took))
		if note != "" {
			line += " (" + note + ")"
		}
		fmt.Fprintln(u.Out, line)
		if err != nil {
			return &StepError{Index: i, Step: *s, Err: err}
		}
		if saveErr != nil {
			return saveErr
		}
	}
	return nil
}

// step runs one step; it returns a note for the progress line.
func (u *Upgrader) step(ctx context.Context, st *State, n lbadapters.Node, s Step) (string, error) {
	switch s.Kind {
	case KindDrain:
		out := lbadapters.DrainAll(ctx, u.Balancers, n, lbadapters.Wait{Timeout: orDefault(u.DrainTimeout, DefaultDrainTimeout),
			Poll: u.poll(), Progress: u.progress(), Clock: u.Clock})
		return "", outcomeErr(out)
	case KindEnable:
		if err := lbadapters.Ready(ctx, u.Agent, n); err != nil {
			return "", err
		}
		out := lbadapters.EnableAll(ctx, u.Balancers, n, lbadapters.Wait{Timeout: orDefault(u.EnableTimout, DefaultEnableTimeout),
			Poll: u.poll(), Progress: u.progress(), Clock: u.Clock})
		return "", outcomeErr(out)
	case KindWaitHealthy:
		v, note, err := u.waitHealthy(ctx, n, st.Before[n.Name])
		if err == nil {
			if st.After == nil {
				st.After = map[string]string{}
			}
			st.After[n.Name] = v
		}
		return note, err
	case KindSyncOnce:
		// Where the node's lbagent daemon runs the sync worker, it holds the target's lock
		// for its own passes and "sync --once" says "another sync is running": then its
		// next successful pass (after this step began, by the node's clock) is the pass.
		since := u.clock().Now()
		if as, err := u.Agent.Status(ctx, n); err == nil && !as.Time.IsZero() {
			since = as.Time
		}
		var out bytes.Buffer
		err := u.run(ctx, n, s.Remote, &out)
		var ee *remote.ExitError
		if err == nil || !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(out.String(), "another sync is running") {
			return "", err
		}
		fmt.Fprintf(u.Out, "%s | the node's lbagent is syncing: waiting for its next successful pass\n", n.Name)
		return "pass by the node's lbagent", u.waitSyncPass(ctx, n, since)
	}
	return "", u.run(ctx, n, s.Remote, nil)
}

// waitSyncPass polls the node's agent until its sync worker reports a successful pass after
// since (the agent's own clock).
func (u *Upgrader) waitSyncPass(ctx context.Context, n lbadapters.Node, since time.Time) error {
	c := u.clock()
	timeout := orDefault(u.HealthTimeout, DefaultHealthTimeout)
	deadline := c.Now().Add(timeout)
	last := "no answer yet"
	for {
		s, err := u.Agent.Status(ctx, n)
		switch {
		case err != nil:
			last = err.Error()
		case s.Components.Sync == nil:
			last = "its lbagent runs no config sync"
		case s.Components.Sync.Paused:
			last = "config sync paused"
		case s.Components.Sync.LastSuccess != nil && s.Components.Sync.LastSuccess.After(since):
			return nil
		default:
			last = "no successful pass since " + since.Format(time.RFC3339)
			if e := s.Components.Sync.LastError; e != "" {
				last += ": " + e
			}
		}
		if c.Now().After(deadline) {
			return fmt.Errorf("%s: no successful config sync pass after %s (last: %s)", n.Name, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.After(u.poll()):
		}
	}
}

// waitHealthy polls the node's agent until it reports the node healthy with an X-Road version
// other than before (or the same one for SameVersionGrace: nothing was upgraded).
func (u *Upgrader) waitHealthy(ctx context.Context, n lbadapters.Node, before string) (version, note string, err error) {
	c := u.clock()
	deadline := c.Now().Add(orDefault(u.HealthTimeout, DefaultHealthTimeout))
	var healthySince time.Time
	last := "no answer yet"
	for {
		s, err := u.Agent.Status(ctx, n)
		switch {
		case err != nil:
			last, healthySince = err.Error(), time.Time{}
		case s.State != lbadapters.AgentHealthy:
			last, healthySince = fmt.Sprintf("%s: %s", s.State, s.Output), time.Time{}
		default:
			v := xroadVersion(s)
			if v != before || before == "" {
				return v, "", nil
			}
			if healthySince.IsZero() {
				healthySince = c.Now()
			}
			last = "healthy, still version " + v
			if c.Since(healthySince) >= SameVersionGrace {
				return v, "version unchanged: " + v, nil
			}
		}
		if c.Now().After(deadline) {
			return "", "", fmt.Errorf("%s not healthy with a new version after %s (last: %s)", n.Name, orDefault(u.HealthTimeout, DefaultHealthTimeout), last)
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-c.After(u.poll()):
		}
	}
}

func xroadVersion(s lbadapters.AgentStatus) string {
	if s.Components.Version == nil {
		return ""
	}
	return s.Components.Version.XRoad
}

// progress prints a balancer's state whenever it changes.
func (u *Upgrader) progress() func(lbadapters.Progress) {
	var mu sync.Mutex
	seen := map[string]lbadapters.ServerState{}
	return func(p lbadapters.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if l, ok := seen[p.Balancer]; ok && l == p.State {
			return
		}
		seen[p.Balancer] = p.State
		fmt.Fprintf(u.Out, "%s | %s\n", p.Node, p.String())
	}
}

func outcomeErr(out []lbadapters.Outcome) error {
	var errs []error
	for _, o := range out {
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	return errors.Join(errs...)
}

// fmtDur is a duration for a progress line: 850ms, 12.3s, 2m05s.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// prefixWriter writes whole lines with a prefix; tee gets the raw bytes too.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
	tee    io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tee != nil {
		_, _ = p.tee.Write(b)
	}
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadString('\n')
		if err != nil {
			p.buf.WriteString(line)
			break
		}
		fmt.Fprint(p.w, p.prefix+line)
	}
	return len(b), nil
}

// Flush writes a last line without a newline.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf.Len() > 0 {
		fmt.Fprintln(p.w, p.prefix+p.buf.String())
		p.buf.Reset()
	}
}

// Summary is one row of the final table.
type Summary struct {
	Node, Before, After string
	Drain, Downtime     time.Duration
	Result              string
}

// Summarize is the final table's rows, one per node of the plan, in the order the nodes are
// upgraded (the 7.2.1 pauses aside).
func Summarize(st *State) []Summary {
	var rows []Summary
	idx := map[string]int{}
	ordered := slices.Clone(st.Steps)
	slices.SortStableFunc(ordered, func(a, b Step) int { return pauseFirst(a) - pauseFirst(b) })
	for _, s := range ordered {
		if _, ok := idx[s.Node]; !ok && (s.Kind == KindPauseReplay || s.Kind == KindPauseSync) {
			continue // a node's row starts at its first own step
		}
		if _, ok := idx[s.Node]; !ok {
			idx[s.Node] = len(rows)
			rows = append(rows, Summary{Node: s.Node, Before: st.Before[s.Node], After: st.After[s.Node], Result: "upgraded"})
		}
	}
	for _, s := range st.Steps {
		i, ok := idx[s.Node]
		if !ok {
			i = len(rows)
			idx[s.Node] = i
			rows = append(rows, Summary{Node: s.Node, Before: st.Before[s.Node], After: st.After[s.Node], Result: "upgraded"})
		}
		r := &rows[i]
		switch s.Kind {
		case KindDrain:
			if s.Status == Done {
				r.Drain = s.Took
			}
		case KindEnable:
			if s.Status == Done {
				for _, d := range st.Steps {
					if d.Node == s.Node && d.Kind == KindDrain && !d.Start.IsZero() {
						r.Downtime = s.Start.Add(s.Took).Sub(d.Start)
					}
				}
			}
		}
	}
	for i := range rows {
		rows[i].Result = result(st, rows[i].Node)
	}
	return rows
}

// result is a node's outcome: upgraded, FAILED at its failed step, unfinished at its next
// step, or not started (its 7.2.1 pauses aside).
func result(st *State, node string) string {
	started := false
	for _, s := range st.Steps {
		if s.Node != node {
			continue
		}
		switch {
		case s.Status == Failed:
			r := "FAILED at " + s.Kind
			if drained(st, node) {
				r += " (drained)"
			}
			return r
		case s.Status == Pending && !started:
			return "not started"
		case s.Status == Pending:
			r := "unfinished at " + s.Kind
			if drained(st, node) {
				r += " (drained)"
			}
			return r
		case s.Kind != KindPauseReplay && s.Kind != KindPauseSync:
			started = true
		}
	}
	return "upgraded"
}

// pauseFirst sorts the 7.2.1 pauses after everything else (1), for Summarize's row order.
func pauseFirst(s Step) int {
	if s.Kind == KindPauseReplay || s.Kind == KindPauseSync {
		return 1
	}
	return 0
}

// drained reports whether the node's drain is done and its enable is not.
func drained(st *State, node string) bool {
	d, e := false, false
	for _, s := range st.Steps {
		if s.Node == node && s.Kind == KindDrain && s.Status == Done {
			d = true
		}
		if s.Node == node && s.Kind == KindEnable && s.Status == Done {
			e = true
		}
	}
	return d && !e
}

// Drained lists the nodes that the run left drained.
func Drained(st *State) []string {
	var out []string
	for _, s := range st.Steps {
		if s.Kind == KindDrain && drained(st, s.Node) && !slices.Contains(out, s.Node) {
			out = append(out, s.Node)
		}
	}
	return out
}

// WriteTable prints the final table.
func WriteTable(w io.Writer, rows []Summary) {
	fmt.Fprintf(w, "%-8s %-30s %-9s %-9s %s\n", "NODE", "VERSION", "DRAIN", "DOWNTIME", "RESULT")
	for _, r := range rows {
		ver := orQ(r.Before) + " -> " + orQ(r.After)
		fmt.Fprintf(w, "%-8s %-30s %-9s %-9s %s\n", r.Node, ver, durOrDash(r.Drain), durOrDash(r.Downtime), r.Result)
	}
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func durOrDash(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmtDur(d)
}
