package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/xroad-lb/lbkit/testenv"
)

// waitOutput waits until p's output has want after the first from bytes; the test's
// -timeout bounds the wait.
func waitOutput(t *testing.T, p *agentProc, from int, want string) int {
	t.Helper()
	for {
		out := p.log()
		if i := strings.Index(out[from:], want); i >= 0 {
			return from + i + len(want)
		}
		select {
		case <-p.exited:
			t.Fatalf("lbagent exited (%v); no %q in:\n%s", p.cmd.ProcessState, want, out)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestSyncLogsAndIgnoresSIGHUP: the continuous "lbagent sync" (lbagent-sync.service) used to
// die of SIGHUP without a log line (issue 12 bug 7). It logs that its settings take effect at
// a restart and syncs on; SIGTERM still stops it cleanly.
func TestSyncLogsAndIgnoresSIGHUP(t *testing.T) {
	bin, err := testenv.BuildLBAgent(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{"etc/conf.d", "target", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort("127.0.0.1") // nobody listens: every pass fails and is retried
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, exec.Command(bin, "sync", "--xroad-dir", filepath.Join(dir, "etc"),
		"--primary", "127.0.0.1:"+strconv.Itoa(port), "--identity", filepath.Join(dir, "id"),
		"--known-hosts", filepath.Join(dir, "known_hosts"), "--target", filepath.Join(dir, "target"),
		"--state-dir", filepath.Join(dir, "state"), "--pause-file", filepath.Join(dir, "pause"),
		"--log-file", "", "--interval", "100ms"))
	at := waitOutput(t, p, 0, "config sync started")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	at = waitOutput(t, p, at, "SIGHUP")
	waitOutput(t, p, at, "config sync pass failed") // still syncing
	line := p.log()[strings.LastIndex(p.log()[:at], "\n")+1:]
	line = line[:strings.Index(line, "\n")]
	if !strings.Contains(line, "systemctl restart lbagent-sync") {
		t.Errorf("SIGHUP log line %q; want it to say that a restart applies settings", line)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit after SIGTERM: %v; want 0\n%s", p.cmd.ProcessState, p.log())
	}
}
