package main

import (
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// TestDoctorExitCode: the worst finding is the exit code, one line per check with its chapter.
func TestDoctorExitCode(t *testing.T) {
	warn := testenv.NewNode(t, testenv.NodeOptions{HealthInterface: "0.0.0.0", HealthPort: 5588})
	code, out := capture(t, "doctor", "--xroad-dir", warn.XRoadDir)
	if code != 1 || !strings.Contains(out, "warn  3.3") || !strings.Contains(out, "ok    3.4") {
		t.Errorf("standalone node: exit %d; want 1 with the 3.3 warning:\n%s", code, out)
	}
	off := testenv.NewNode(t, testenv.NodeOptions{HealthPort: -1})
	code, out = capture(t, "doctor", "--xroad-dir", off.XRoadDir)
	if code != 2 || !strings.Contains(out, "FAIL  3.4") || !strings.Contains(out, "health-check-port is 0") {
		t.Errorf("health port off: exit %d; want 2 with the 3.4 line:\n%s", code, out)
	}
}
