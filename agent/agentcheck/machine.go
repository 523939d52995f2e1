package agentcheck

import (
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/verdict"
	"github.com/xroad-lb/lbkit/haproxy"
)

// maxOwed bounds the peers remembered as owed "ready"; past it the machine owes "ready" to any
// peer (as after a restart from an old state file), so no client can grow the set.
const maxOwed = 64

// DefaultReadyFor is how long, after the node's maintenance ends, a peer that was told
// drain/maint stays owed its "ready" (see the package doc).
const DefaultReadyFor = time.Minute

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

// machine turns verdicts into agent replies, one peer at a time.
type machine struct {
	word     string // drain or maint
	weight   func() int
	readyFor time.Duration
	st       *State // the state file, shared with push
	clock    clockwork.Clock

	mu     sync.Mutex
	phase  phase
	owed   map[string]bool // peers told drain/maint that have not had their "ready" yet
	anyone bool            // the owed peers are unknown (old state file): "ready" to every peer
	until  time.Time       // end of lifting at the latest
	dirty  bool            // the state file is behind

	// cache of the last rendered lines, without and with "ready"
	lastV      *verdict.Verdict
	lastWeight int
	lines      [2][]byte
}

// restore takes the announcement and the owed peers from the state file read at the start:
// a drain/maint announced before a restart is lifted by us (see State).
func (m *machine) restore() {
	word, anyone, peers := m.st.announcement()
	if word == "" {
		return
	}
	m.phase, m.anyone = announced, anyone
	if !anyone {
		m.owed = make(map[string]bool, len(peers))
		for _, p := range peers {
			m.owed[p] = true
		}
	}
}

// flush brings the state file in line with the machine, if it is behind. Errors are returned
// to the caller, who keeps answering (the file only matters across restarts).
func (m *machine) flush() error {
	if !m.dirty {
		return nil
	}
	m.dirty = false
	if m.phase == idle {
		return m.st.setAnnouncement("", false, nil)
	}
	peers := make([]string, 0, len(m.owed))
	for p := range m.owed {
		peers = append(peers, p)
	}
	return m.st.setAnnouncement(m.word, m.anyone, peers)
}

// advance applies verdict v and the clock; it involves no peer.
func (m *machine) advance(v *verdict.Verdict, now time.Time) {
	switch {
	case v.State == verdict.Maintenance:
		if m.phase != announced {
			m.phase, m.dirty = announced, true
		}
	case m.phase == announced:
		m.phase, m.until = lifting, now.Add(m.readyFor)
		m.settle()
	case m.phase == lifting && !now.Before(m.until):
		m.toIdle() // owed peers that never came back are forgotten
	}
}

// settle ends lifting once nobody is owed "ready".
func (m *machine) settle() {
	if m.phase == lifting && len(m.owed) == 0 && !m.anyone {
		m.toIdle()
	}
}

func (m *machine) toIdle() {
	m.phase, m.owed, m.anyone, m.dirty = idle, nil, false, true
}

// reply renders v; ready adds the admin word "ready" (not in maintenance).
func (m *machine) reply(v *verdict.Verdict, weight int, ready bool) haproxy.AgentReply {
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
	if ready {
		r.Admin = "ready"
	}
	return r
}

// line advances the machine and returns the line for peer ("" = no peer, e.g. /status: such a
// line never announces anything to anyone, nor carries "ready"). ready reports a "ready" owed
// to peer; it stays owed until delivered(peer). The line is shared: do not modify it.
func (m *machine) line(v *verdict.Verdict, peer string) (line []byte, ready bool, err error) {
	weight := 0
	if m.weight != nil {
		weight = m.weight()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(v, m.clock.Now())
	if peer != "" {
		switch m.phase {
		case announced:
			switch {
			case m.anyone || m.owed[peer]:
			case len(m.owed) >= maxOwed:
				m.owed, m.anyone, m.dirty = nil, true, true
			default:
				if m.owed == nil {
					m.owed = make(map[string]bool)
				}
				m.owed[peer], m.dirty = true, true
			}
		case lifting:
			ready = m.anyone || m.owed[peer]
		}
	}
	err = m.flush()
	if v != m.lastV || weight != m.lastWeight {
		m.lastV, m.lastWeight, m.lines = v, weight, [2][]byte{}
	}
	i := 0
	if ready {
		i = 1
	}
	if m.lines[i] == nil {
		m.lines[i] = m.reply(v, weight, ready).Append(nil)
	}
	return m.lines[i], ready, err
}

// delivered forgets the "ready" owed to peer, which has it now.
func (m *machine) delivered(peer string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.phase != lifting || !m.owed[peer] {
		return nil
	}
	delete(m.owed, peer)
	m.dirty = true
	m.settle()
	return m.flush()
}

// snapshot is the machine's state for /status.
func (m *machine) snapshot() (p phase, owed []string, anyone bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for peer := range m.owed {
		owed = append(owed, peer)
	}
	slices.Sort(owed)
	return m.phase, owed, m.anyone
}
