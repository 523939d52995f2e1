package confsync

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// notices receives the change notices of `lbagent sync serve` on the primary (serve.go)
// and wakes the worker. Without lbagent on the primary (or with serve-command empty) the
// worker polls every interval, as before.
type notices struct {
	wake chan struct{} // one pending wake-up at most

	mu      sync.Mutex
	pending map[string]bool // changed paths since the last pass took them
	state   string          // for Status: "inotify" or "polling: <why>"
}

func newNotices() *notices {
	return &notices{wake: make(chan struct{}, 1), pending: map[string]bool{}, state: "polling"}
}

func (n *notices) setState(s string) {
	n.mu.Lock()
	n.state = s
	n.mu.Unlock()
}

func (n *notices) State() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// take returns the paths noticed since the last call.
func (n *notices) take() []string {
	select { // a wake-up for what is taken now is spent
	case <-n.wake:
	default:
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.pending) == 0 {
		return nil
	}
	out := make([]string, 0, len(n.pending))
	for p := range n.pending {
		out = append(out, p)
	}
	n.pending = map[string]bool{}
	return out
}

func (n *notices) add(rel string) {
	n.mu.Lock()
	n.pending[rel] = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// shellQuote quotes s for the primary's shell (single quotes).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// startServe runs the serve command on the primary over the session's SSH connection and
// feeds its notices until the connection ends. It waits for the ready line at most
// timeout; a primary without lbagent leaves the worker polling (the error says why).
func startServe(client *ssh.Client, command, source string, excludes []string, timeout time.Duration, n *notices) error {
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	out, err := sess.StdoutPipe()
	if err == nil {
		// Kept open: serve ends when its stdin closes, that is with the connection.
		_, err = sess.StdinPipe()
	}
	if err == nil {
		sess.Stderr = io.Discard
		args := []string{command, shellQuote(source)}
		for _, e := range excludes {
			args = append(args, shellQuote(e))
		}
		err = sess.Start(strings.Join(args, " "))
	}
	if err != nil {
		sess.Close()
		return fmt.Errorf("start %q: %w", command, err)
	}
	// The pass does not wait for serve: the ready line (or the reason there is none) is
	// awaited here, in the background, at most timeout.
	n.setState("polling: waiting for " + command)
	go func() {
		defer sess.Close()
		r := bufio.NewReader(out)
		ready := make(chan error, 1)
		go func() {
			line, err := r.ReadString('\n')
			if err == nil && strings.TrimSpace(line) != ServeReady {
				err = fmt.Errorf("unexpected first line %q", truncate(strings.TrimSpace(line), 80))
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("exited without a ready line (no lbagent on the primary?)")
				if werr := sess.Wait(); werr != nil {
					err = fmt.Errorf("%w: %v", err, werr)
				}
			}
			ready <- err
		}()
		t := time.NewTimer(timeout)
		var err error
		select {
		case err = <-ready:
		case <-t.C:
			err = fmt.Errorf("no ready line within %s", timeout)
		}
		t.Stop()
		if err != nil {
			n.setState("polling: " + command + ": " + err.Error())
			return
		}
		n.setState("inotify")
		// A change between the pass's listing and the ready line sent no notice: one
		// pass lists everything again.
		n.add("")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				n.setState("polling: change notices ended")
				return
			}
			rel, err := strconv.Unquote(strings.TrimSuffix(line, "\n"))
			if err != nil {
				rel = "" // unreadable: list everything
			}
			n.add(rel)
		}
	}()
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
