package agentcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/xroad-lb/lbkit/agent/verdict"
	"github.com/xroad-lb/lbkit/haproxy"
)

// DefaultReadyFor is how long "ready" is repeated after the agent lifts its own drain.
const DefaultReadyFor = 10 * time.Second

// phase is the state machine's state (see the package doc).
type phase int

const (
	idle phase = iota
	announced
	lifting
)

func (p phase) String() string {
	return [...]string{"idle", "announced", "lifting"}[p]
}

// machine turns verdicts into agent replies.
type machine struct {
	word      string // drain or maint
	weight    func() int
	readyFor  time.Duration
	stateFile string
	now       func() time.Time

	mu    sync.Mutex
	phase phase
	until time.Time // end of lifting

	// cache of the last rendered line
	lastV      *verdict.Verdict
	lastPhase  phase
	lastWeight int
	lastLine   []byte
}

// restore reads the state file: a drain/maint announced before a restart is lifted by us.
func (m *machine) restore() error {
	if m.stateFile == "" {
		return nil
	}
	b, err := os.ReadFile(m.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent-check state file: %w", err)
	}
	switch w := strings.TrimSpace(string(b)); w {
	case "drain", "maint":
		m.phase = announced
	case "":
	default:
		return fmt.Errorf("agent-check state file %s: %q: want drain or maint", m.stateFile, w)
	}
	return nil
}

// persist records (or forgets) an announcement; errors are returned to the caller, who
// keeps answering (the file only matters across restarts).
func (m *machine) persist(on bool) error {
	if m.stateFile == "" {
		return nil
	}
	if !on {
		if err := os.Remove(m.stateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("agent-check state file: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(m.stateFile), 0o755); err != nil {
		return fmt.Errorf("agent-check state file: %w", err)
	}
	tmp := m.stateFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(m.word+"\n"), 0o644); err != nil {
		return fmt.Errorf("agent-check state file: %w", err)
	}
	if err := os.Rename(tmp, m.stateFile); err != nil {
		return fmt.Errorf("agent-check state file: %w", err)
	}
	return nil
}

// step advances the state machine for verdict v at now. It returns a persistence error, if any.
func (m *machine) step(v *verdict.Verdict, now time.Time) error {
	switch {
	case v.State == verdict.Maintenance:
		if m.phase != announced {
			m.phase = announced
			return m.persist(true)
		}
	case m.phase == announced:
		m.phase, m.until = lifting, now.Add(m.readyFor)
	case m.phase == lifting && !now.Before(m.until):
		m.phase = idle
		return m.persist(false)
	}
	return nil
}

// reply renders v in the current phase.
func (m *machine) reply(v *verdict.Verdict, weight int) haproxy.AgentReply {
	var r haproxy.AgentReply
	switch v.State {
	case verdict.Maintenance:
		r.Admin = m.word
		return r
	case verdict.Healthy:
		r.Health = "up"
		if weight > 0 {
			r.Weight, r.WeightSet = weight, true
		}
	default:
		r.Health, r.Text = "down", v.Reason
	}
	if m.phase == lifting {
		r.Admin = "ready"
	}
	return r
}

// line advances the machine and returns the current line (shared: do not modify it).
func (m *machine) line(v *verdict.Verdict) ([]byte, error) {
	weight := 0
	if m.weight != nil {
		weight = m.weight()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.step(v, m.now())
	if v == m.lastV && m.phase == m.lastPhase && weight == m.lastWeight && m.lastLine != nil {
		return m.lastLine, err
	}
	m.lastV, m.lastPhase, m.lastWeight = v, m.phase, weight
	m.lastLine = m.reply(v, weight).Append(nil)
	return m.lastLine, err
}
