package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

// TestVersionComponent: components.version shows lbagent's version and the first line of
// xroad-version-file, also on the public health port (lbadapter upgrade reads it there).
func TestVersionComponent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "xroad-version")
	if err := os.WriteFile(file, []byte("7.4.0-1\nsecond line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := &versionReader{file: file}
	if got := v.status(); got != (VersionStatus{LBAgent: version, XRoad: "7.4.0-1"}) {
		t.Errorf("status %+v; want lbagent %q, xroad 7.4.0-1", got, version)
	}
	st := healthport.BuildStatus(&verdict.Verdict{State: verdict.Healthy, Time: time.Now()}, time.Now(),
		map[string]func() any{"version": v.status}, false)
	b, err := json.Marshal(st.Components["version"])
	if err != nil || string(b) != `{"lbagent":"`+version+`","xroad":"7.4.0-1"}` {
		t.Errorf("public components.version %s, %v", b, err)
	}
	missing := &versionReader{file: filepath.Join(t.TempDir(), "none")}
	if got := missing.status().(VersionStatus); got.XRoad != "" || !strings.Contains(got.LBAgent, version) {
		t.Errorf("missing file: %+v; want xroad empty", got)
	}
}
