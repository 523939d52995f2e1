package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	gosync "sync"
	"time"

	"github.com/xroad-lb/lbkit/agent"
)

// versionTTL is how long a read X-Road version is reused: dpkg-query is a process per call.
const versionTTL = 5 * time.Second

// versions shows, in /status under components.version, lbagent's own version and the X-Road
// version of the node: the first line of [lbagent] xroad-version-file when set, else
// `dpkg-query -W -f '${Version}' xroad-proxy`. lbadapter upgrade reads both.
func versions(a *agent.Agent, _ zerologLogger) (*agent.Component, error) {
	file := a.Config().Settings.String(agent.Section, "xroad-version-file", "")
	v := &versionReader{file: file}
	return &agent.Component{Name: "version", Status: v.status}, nil
}

// VersionStatus is components.version of /status.
type VersionStatus struct {
	LBAgent string `json:"lbagent"`
	XRoad   string `json:"xroad"` // "" when unknown
}

type versionReader struct {
	file string
	mu   gosync.Mutex
	at   time.Time
	last string
}

func (v *versionReader) status() any {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.at.IsZero() || time.Since(v.at) > versionTTL {
		v.last, v.at = v.read(), time.Now()
	}
	return VersionStatus{LBAgent: version, XRoad: v.last}
}

func (v *versionReader) read() string {
	if v.file != "" {
		b, err := os.ReadFile(v.file)
		if err != nil {
			return ""
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSpace(line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", "xroad-proxy").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
