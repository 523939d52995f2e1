package agentcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// TestStateSharedWithPush: the agent-check and push keep their parts of the one state file;
// neither the agent-check going idle nor push lifting its drain removes the other's part.
func TestStateSharedWithPush(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1_700_000_000, 0))
	path := filepath.Join(t.TempDir(), "agentcheck.state")
	st, err := OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	store := newStore(clock)
	pass(store)
	store.SetMaintenance(true)
	s, err := NewWithState(Config{StateFile: path}, st, store, func(err error) { t.Error(err) }, clock)
	if err != nil {
		t.Fatal(err)
	}
	s.Line(peerA)
	if err := st.SetPushed("drain"); err != nil {
		t.Fatal(err)
	}
	if got, want := readState(t, path), "drain\npeers http:"+peerA+"\npushed drain\n"; got != want {
		t.Fatalf("state file got %q; want %q", got, want)
	}

	// Restart: both parts come back.
	st2, err := OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.Pushed(); got != "drain" {
		t.Errorf("pushed after restart got %q; want drain", got)
	}
	store.SetMaintenance(false)
	s2, err := NewWithState(Config{StateFile: path}, st2, store, func(err error) { t.Error(err) }, clock)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s2.Line(peerA)); got != "up ready\n" || s2.Phase() != "idle" {
		t.Fatalf("after restart got %q, %s; want up ready, idle", got, s2.Phase())
	}
	if got, want := readState(t, path), "pushed drain\n"; got != want {
		t.Fatalf("state file after the agent-check's lift got %q; want %q (push's part kept)", got, want)
	}
	if err := st2.SetPushed(""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("state file with nothing to keep: %v; want it removed", err)
	}
	if err := st2.SetPushed("ready"); err == nil {
		t.Error("SetPushed(ready): no error; want drain or maint only")
	}
}

func TestOpenStateFormats(t *testing.T) {
	tests := []struct {
		content, announced string
		anyone             bool
		peers              []string
		pushed, err        string
	}{
		{"", "", false, nil, "", ""},
		{"drain\n", "drain", true, nil, "", ""}, // an older lbagent's file
		{"maint\npeers\n", "maint", false, []string{}, "", ""},
		{"drain\npeers 192.0.2.10 http:192.0.2.11\npushed maint\n", "drain", false, []string{"192.0.2.10", "http:192.0.2.11"}, "maint", ""},
		{"pushed drain\n", "", false, nil, "drain", ""},
		{"pushed ready\n", "", false, nil, "", `line 1 "pushed ready"`},
		{"pushed drain\ndrain\n", "", false, nil, "", `line 2 "drain"`},
		{"peers 192.0.2.10\n", "", false, nil, "", `line 1 "peers 192.0.2.10"`},
		{"drain\npushed drain\npushed maint\n", "", false, nil, "", `line 3 "pushed maint"`},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "agentcheck.state")
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := OpenState(path)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: got %v; want an error naming %s and %s", tt.content, err, path, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.content, err)
			continue
		}
		word, anyone, peers := st.announcement()
		if word != tt.announced || anyone != tt.anyone || strings.Join(peers, " ") != strings.Join(tt.peers, " ") ||
			(peers == nil) != (tt.peers == nil) || st.Pushed() != tt.pushed {
			t.Errorf("%q: got %q %v %q pushed %q; want %q %v %q pushed %q", tt.content,
				word, anyone, peers, st.Pushed(), tt.announced, tt.anyone, tt.peers, tt.pushed)
		}
	}
}
