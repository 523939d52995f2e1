package agentcheck

import (
	"errors"
	"fmt"
	"github.com/xroad-lb/lbkit/internal/atomicfile"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// State is what the agent itself set in HAProxy and must lift after a restart, kept in one
// file ([agent-check] state-file, default /var/lib/lbagent/agentcheck.state):
//
//	drain                          the agent-check announced drain (or maint) ...
//	peers 192.0.2.10 http:10.0.0.5 ... to these peers, still owed "ready"
//	pushed drain                   push set drain (or maint) through the runtime API
//
// Each line is there only when it has something to say; a file with nothing to say is
// removed. The agent-check server and push share one State (the daemon opens it once), so
// neither overwrites the other's part. A State with no path keeps everything in memory.
type State struct {
	path string

	mu        sync.Mutex
	announced string   // the agent-check's word while it announces or lifts; "" = idle
	anyone    bool     // announced to unknown peers (a file without a peers line)
	peers     []string // owed "ready"
	pushed    string   // drain or maint set by push and not lifted yet; "" = none
}

// OpenState reads the state file at path ("" = memory only); a missing file is an empty
// state. Errors name the file.
func OpenState(path string) (*State, error) {
	st := &State{path: path}
	if path == "" {
		return st, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent-check state file: %w", err)
	}
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0 && i == 0: // empty file
		case i == 0 && len(f) == 1 && isAdminWord(f[0]):
			st.announced, st.anyone = f[0], true
		case len(f) > 0 && f[0] == peersKey && st.announced != "" && st.peers == nil && st.anyone:
			st.anyone, st.peers = false, append([]string{}, f[1:]...)
		case len(f) == 2 && f[0] == pushedKey && isAdminWord(f[1]) && st.pushed == "":
			st.pushed = f[1]
		default:
			return nil, fmt.Errorf("agent-check state file %s: line %d %q: want drain or maint, then %q and the owed peers, or %q and drain or maint",
				path, i+1, l, peersKey, pushedKey)
		}
	}
	return st, nil
}

// Keys of the state file's lines.
const (
	peersKey  = "peers"
	pushedKey = "pushed"
)

func isAdminWord(w string) bool { return w == "drain" || w == "maint" }

// Path is the state file ("" = memory only).
func (st *State) Path() string { return st.path }

// announcement is the agent-check's part: the word announced ("" = idle), whether it went to
// unknown peers, and the peers owed "ready".
func (st *State) announcement() (word string, anyone bool, peers []string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.announced, st.anyone, slices.Clone(st.peers)
}

// setAnnouncement records the agent-check's part and writes the file.
func (st *State) setAnnouncement(word string, anyone bool, peers []string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.announced, st.anyone, st.peers = word, anyone, slices.Sorted(slices.Values(peers))
	if word == "" {
		st.anyone, st.peers = false, nil
	}
	return st.write()
}

// Pushed is the admin state (drain or maint) that push set and has not lifted, "" for none.
func (st *State) Pushed() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.pushed
}

// SetPushed records that push set word (drain or maint), or lifted it ("").
func (st *State) SetPushed(word string) error {
	if word != "" && !isAdminWord(word) {
		return fmt.Errorf("agent-check state file: pushed %q: want drain or maint", word)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.pushed == word {
		return nil
	}
	st.pushed = word
	return st.write()
}

// write brings the file in line with st (held locked): written to a temporary file and
// renamed into place, removed when there is nothing to keep.
func (st *State) write() error {
	if st.path == "" {
		return nil
	}
	var b strings.Builder
	if st.announced != "" {
		b.WriteString(st.announced + "\n")
		if !st.anyone {
			b.WriteString(strings.TrimSpace(peersKey+" "+strings.Join(st.peers, " ")) + "\n")
		}
	}
	if st.pushed != "" {
		b.WriteString(pushedKey + " " + st.pushed + "\n")
	}
	if b.Len() == 0 {
		if err := atomicfile.Remove(st.path); err != nil {
			return fmt.Errorf("agent-check state file: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(st.path), 0o755); err != nil {
		return fmt.Errorf("agent-check state file: %w", err)
	}
	if err := atomicfile.WriteFile(st.path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("agent-check state file: %w", err)
	}
	return nil
}
