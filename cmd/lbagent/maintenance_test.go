package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/testenv"
)

// TestMaintenanceUsage: without an argument, or with a wrong one, lbagent maintenance says
// what it takes (on, off, status) in one line and exits 2, instead of cobra's generic
// "accepts 1 arg(s), received 0" (issue 12 bug 8).
func TestMaintenanceUsage(t *testing.T) {
	free, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"maintenance"}, 2, "lbagent: maintenance: want on, off or status (e.g. lbagent maintenance on)\n"},
		{[]string{"maintenance", "on", "off"}, 2, "lbagent: maintenance: want on, off or status (e.g. lbagent maintenance on)\n"},
		{[]string{"maintenance", "of"}, 2, `lbagent: maintenance "of": want on, off or status (e.g. lbagent maintenance on)` + "\n"},
		{[]string{"maintenance", "status", "--admin", "127.0.0.1:" + strconv.Itoa(free)}, 3, "lbagent: not running: admin port 127.0.0.1:" + strconv.Itoa(free)},
	} {
		code, out := capture(t, tt.args...)
		if code != tt.code || !strings.HasPrefix(out, tt.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want exit %d and one line %q", tt.args, code, out, tt.code, tt.want)
		}
	}
}
