package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// TestDoctorExitCode: the worst finding is the exit code, one line per check with its chapter.
func TestDoctorExitCode(t *testing.T) {
	admin, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// A free health port, no agent-check port, a free admin port: the shared machine's 5588,
	// 5589 and 5566 stay out of it.
	warn := testenv.NewNode(t, testenv.NodeOptions{HealthInterface: "0.0.0.0", LBAgentINI: "[agent-check]\nlisten = off\n"})
	code, out := capture(t, "doctor", "--xroad-dir", warn.XRoadDir, "--admin", fmt.Sprintf("127.0.0.1:%d", admin))
	if code != 1 || !strings.Contains(out, "warn  3.3") || !strings.Contains(out, "ok    3.4") {
		t.Errorf("standalone node: exit %d; want 1 with the 3.3 warning:\n%s", code, out)
	}
	off := testenv.NewNode(t, testenv.NodeOptions{HealthPort: -1})
	code, out = capture(t, "doctor", "--xroad-dir", off.XRoadDir, "--admin", fmt.Sprintf("127.0.0.1:%d", admin))
	if code != 2 || !strings.Contains(out, "FAIL  3.4") || !strings.Contains(out, "health-check-port is 0") {
		t.Errorf("health port off: exit %d; want 2 with the 3.4 line:\n%s", code, out)
	}
}
