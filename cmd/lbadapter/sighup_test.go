package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
)

// waitFor waits until out has want after the first from bytes and returns where it ends;
// exited ends the wait early (the test's -timeout bounds it otherwise).
func waitFor(t *testing.T, out *testenv.Output, exited <-chan struct{}, from int, want string) int {
	t.Helper()
	for {
		s := out.String()
		if i := strings.Index(s[from:], want); i >= 0 {
			return from + i + len(want)
		}
		select {
		case <-exited:
			t.Fatalf("lbadapter exited; no %q in:\n%s", want, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestWatchLogsAndIgnoresSIGHUP: "lbadapter watch" (lbadapter-watch.service) died of SIGHUP
// without a word. It logs that a restart reads a changed cluster config and watches on;
// SIGTERM still stops it with exit 0.
func TestWatchLogsAndIgnoresSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds lbadapter")
	}
	bin, err := testenv.BuildCommand(context.Background(), t.TempDir(), "lbadapter")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port, err := testenv.FreePort("127.0.0.2") // no agent listens: every poll fails
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "cluster.ini")
	ini := fmt.Sprintf("[balancer]\ntype = nginx\nnginx-conf = %s\nservers-file = %s\nport = 5500\n\n"+
		"[node \"ss1\"]\naddress = 127.0.0.2\nrole = primary\nhealth-port = %d\n",
		filepath.Join(dir, "nginx.conf"), filepath.Join(dir, "servers.conf"), port)
	if err := os.WriteFile(config, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "watch", "--config", config, "--interval", "50ms")
	out := &testenv.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	at := waitFor(t, out, exited, 0, "watching")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	at = waitFor(t, out, exited, at, "signal=SIGHUP")
	line := out.String()[strings.LastIndex(out.String()[:at], "\n")+1:]
	line = line[:strings.Index(line, "\n")]
	if !strings.Contains(line, "systemctl restart lbadapter-watch") {
		t.Errorf("SIGHUP log line %q; want it to say that a restart reads a changed cluster config", line)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-exited // a watch killed by the SIGHUP shows here as "signal: hangup"
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit after SIGTERM: %v; want 0\n%s", cmd.ProcessState, out.String())
	}
}

// TestUpgradeStopsAtSIGHUP: a closed terminal (SIGHUP) ended "lbadapter upgrade" in the
// middle of a step. It now stops after the current step like Ctrl-C, and a second signal
// aborts the step. (Were SIGHUP not caught, it would end this test binary.)
func TestUpgradeStopsAtSIGHUP(t *testing.T) {
	var out testenv.Output
	c := &cli{stdout: &out, stderr: &out}
	stop := make(chan struct{})
	aborted := make(chan struct{})
	release := c.stopOnSignals(context.Background(), stop, func() { close(aborted) })
	defer release()

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	<-stop
	if want := "interrupted by SIGHUP: stopping after the current step (Ctrl-C again to abort it now)\n"; out.String() != want {
		t.Errorf("after SIGHUP: %q; want %q", out.String(), want)
	}
	select {
	case <-aborted:
		t.Fatal("the first signal aborted the current step")
	default:
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	<-aborted
	if !strings.HasSuffix(out.String(), "interrupted again: aborting the current step\n") {
		t.Errorf("after a second SIGHUP: %q", out.String())
	}
}
