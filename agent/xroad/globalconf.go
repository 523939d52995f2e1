package xroad

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GlobalConfFiles are the main instance's files that must be present and not expired
// for the global configuration to be valid (X-Road 7.1+).
var GlobalConfFiles = []string{"private-params.xml", "shared-params.xml"}

// ErrGlobalConfExpired is returned (wrapped) when a file's expirationDate has passed.
var ErrGlobalConfExpired = errors.New("expired")

// Metadata is a global configuration file's .metadata sidecar.
type Metadata struct {
	ContentIdentifier    string `json:"contentIdentifier"`
	InstanceIdentifier   string `json:"instanceIdentifier"`
	ContentLocation      string `json:"contentLocation"`
	ExpirationDate       string `json:"expirationDate"`
	ConfigurationVersion string `json:"configurationVersion"`
}

// Expires parses ExpirationDate; ok is false when it is absent (never expires).
func (m Metadata) Expires() (t time.Time, ok bool, err error) {
	if strings.TrimSpace(m.ExpirationDate) == "" {
		return time.Time{}, false, nil
	}
	t, err = time.Parse(time.RFC3339Nano, m.ExpirationDate)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("expirationDate %q: not an ISO-8601 date-time", m.ExpirationDate)
	}
	return t, true, nil
}

// CheckGlobalConf verifies the global configuration under dir/globalconf at time now: the
// main instance (instance-identifier) has private-params.xml and shared-params.xml, and
// neither is past its metadata's expirationDate (a missing metadata file or field means
// "never expires"). The error says which file and why.
func CheckGlobalConf(dir string, now time.Time) error {
	gc := filepath.Join(dir, "globalconf")
	idPath := filepath.Join(gc, "instance-identifier")
	b, err := ReadFile(idPath)
	if err != nil {
		return fmt.Errorf("%s: %w", idPath, err)
	}
	instance := strings.TrimSpace(string(b))
	if instance == "" {
		return fmt.Errorf("%s: empty", idPath)
	}
	instDir := filepath.Join(gc, url.PathEscape(instance))
	for _, name := range GlobalConfFiles {
		p := filepath.Join(instDir, name)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		mp := p + ".metadata"
		mb, err := ReadFile(mp)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", mp, err)
		}
		var m Metadata
		if err := json.Unmarshal(mb, &m); err != nil {
			return fmt.Errorf("%s: not valid JSON: %v", mp, err)
		}
		exp, ok, err := m.Expires()
		if err != nil {
			return fmt.Errorf("%s: %w", mp, err)
		}
		if ok && now.After(exp) {
			return fmt.Errorf("%s: %w at %s", mp, ErrGlobalConfExpired, exp.Format(time.RFC3339))
		}
	}
	return nil
}
