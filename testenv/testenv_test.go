package testenv

import (
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// outcome records what Require asked of its test; like the real ones, Skipf and Fatalf end
// the goroutine.
type outcome struct {
	testing.TB
	skipped, failed string
}

func (o *outcome) Helper()                   {}
func (o *outcome) Skipf(f string, a ...any)  { o.skipped = fmt.Sprintf(f, a...); runtime.Goexit() }
func (o *outcome) Fatalf(f string, a ...any) { o.failed = fmt.Sprintf(f, a...); runtime.Goexit() }

// TestRequire: with -short a test that needs a program is skipped even when the program is
// there; without it a missing program skips, or fails with CI=true.
func TestRequire(t *testing.T) {
	short := testing.Short()
	t.Cleanup(func() { _ = flag.Set("test.short", strconv.FormatBool(short)) })
	tests := []struct {
		name            string
		short           bool
		ci              string
		program         string
		skipped, failed string // a part of the message; "" = none
		found           bool
	}{
		{"short skips a present program", true, "", "sh", "needs sh: skipped with -short", "", false},
		{"short skips even with CI=true", true, "true", "sh", "needs sh: skipped with -short", "", false},
		{"present program is found", false, "true", "sh", "", "", true},
		{"missing program skips", false, "", "no-such-program-lbkit", `program "no-such-program-lbkit" not found`, "", false},
		{"missing program fails with CI=true", false, "true", "no-such-program-lbkit", "", "CI=true: run scripts/install-deps.sh", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := flag.Set("test.short", strconv.FormatBool(tt.short)); err != nil {
				t.Fatal(err)
			}
			t.Setenv("CI", tt.ci)
			o := &outcome{TB: t}
			var path string
			done := make(chan struct{})
			go func() {
				defer close(done)
				path = Require(o, tt.program)
			}()
			<-done
			if tt.skipped == "" && o.skipped != "" || !strings.Contains(o.skipped, tt.skipped) {
				t.Errorf("skipped %q; want %q", o.skipped, tt.skipped)
			}
			if tt.failed == "" && o.failed != "" || !strings.Contains(o.failed, tt.failed) {
				t.Errorf("failed %q; want %q", o.failed, tt.failed)
			}
			if (path != "") != tt.found {
				t.Errorf("path %q; want found=%v", path, tt.found)
			}
		})
	}
}
