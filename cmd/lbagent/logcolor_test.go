package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xroad-lb/lbkit/testenv"
)

// TestConsoleLogWithoutColoursIntoAPipe: --log-format console writes no ANSI colour codes
// when stderr is a file or a pipe (journald, a log file, less): issue 12 bug 8.
func TestConsoleLogWithoutColoursIntoAPipe(t *testing.T) {
	// A secondary without [sync] primary logs a warning while the parts are built.
	n := testenv.NewNode(t, testenv.NodeOptions{Role: "slave", HealthPort: -1})
	code, out := capture(t, "run", "--xroad-dir", n.XRoadDir, "--ocsp-cache-dir", n.OCSPDir, "--check-config", "--log-format", "console")
	if code != 0 || !strings.Contains(out, "WRN secondary without [sync] primary") {
		t.Fatalf("exit %d, %q; want 0 and the console warning about [sync]", code, out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("console log into a pipe has ANSI escapes: %q", out)
	}
}

// TestIsTerminal: a pseudo-terminal is one, a pipe and a file are not.
func TestIsTerminal(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, tt := range []struct {
		name string
		f    *os.File
		want bool
	}{{"pty", pts, true}, {"pipe", w, false}, {"file", file, false}} {
		if got := isTerminal(tt.f); got != tt.want {
			t.Errorf("isTerminal(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
}
