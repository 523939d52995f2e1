package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// TestDoctorExitCode: the worst finding is the exit code, one line per check with its chapter.
// A real lbagent holds the health port, so the balancer-side probe gets an answer.
func TestDoctorExitCode(t *testing.T) {
	bin, err := testenv.BuildLBAgent(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	// Loopback health interface (a warning of its own), no agent-check port: the shared
	// machine's 5588, 5589 and 5566 stay out of it.
	warn := testenv.NewNode(t, testenv.NodeOptions{LBAgentINI: "[agent-check]\nlisten = off\n"})
	ns := newNotifySocket(t)
	p := startLBAgent(t, bin, warn, admin, "NOTIFY_SOCKET="+ns.path)
	if m := ns.next(p.exited, p.log); !strings.Contains(m, "READY=1") {
		t.Fatalf("notification %q; want READY=1", m)
	}
	code, out := capture(t, "doctor", "--xroad-dir", warn.XRoadDir, "--admin", admin)
	if code != 1 || !strings.Contains(out, "warn  3.3") || !strings.Contains(out, "ok    3.4  health check port "+warn.HealthAddr+" answers") {
		t.Errorf("standalone node: exit %d; want 1 with the 3.3 warning and the health port answering:\n%s", code, out)
	}
	p.stop()
	code, out = capture(t, "doctor", "--xroad-dir", warn.XRoadDir, "--admin", admin)
	if code != 2 || !strings.Contains(out, "FAIL  3.4  health check port "+warn.HealthAddr+": nothing answers") {
		t.Errorf("agent stopped: exit %d; want 2 with nothing answering on the health port:\n%s", code, out)
	}
	off := testenv.NewNode(t, testenv.NodeOptions{HealthPort: -1})
	code, out = capture(t, "doctor", "--xroad-dir", off.XRoadDir, "--admin", admin)
	if code != 2 || !strings.Contains(out, "FAIL  3.4") || !strings.Contains(out, "health-check-port is 0") {
		t.Errorf("health port off: exit %d; want 2 with the 3.4 line:\n%s", code, out)
	}
}
