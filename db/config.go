package db

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// Config is the [replication] section of lbagent's settings: the agent's watch of serverconf
// replication on a secondary.
type Config struct {
	// LagLimit makes lag a failure (Critical) beyond it; zero means lag is only a warning.
	LagLimit LagLimit
	// Interval between checks; default 2 s (X-Road's success cache time).
	Interval time.Duration
}

// DefaultInterval is the default time between replication checks.
const DefaultInterval = 2 * time.Second

// LagLimit bounds replay lag in bytes, in time, or both (zero fields are no bound).
type LagLimit struct {
	Bytes int64
	Time  time.Duration
}

// IsZero reports whether no limit is set.
func (l LagLimit) IsZero() bool { return l.Bytes == 0 && l.Time == 0 }

func (l LagLimit) String() string {
	var parts []string
	if l.Bytes > 0 {
		parts = append(parts, strconv.FormatInt(l.Bytes, 10)+" bytes")
	}
	if l.Time > 0 {
		parts = append(parts, l.Time.String())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " or ")
}

// Exceeded reports whether s is behind by more than the limit.
func (l LagLimit) Exceeded(s *Standby) bool {
	return l.Bytes > 0 && s.LagBytes > l.Bytes || l.Time > 0 && s.LagSeconds > l.Time.Seconds()
}

// ParseLagLimit reads "16MB", "1048576" (bytes), "30s", or both separated by a comma
// ("16MB,30s"). Size units are 1024-based: B, kB, MB, GB. Empty is no limit.
func ParseLagLimit(s string) (LagLimit, error) {
	var l LagLimit
	s = strings.TrimSpace(s)
	if s == "" {
		return l, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if n, err := parseBytes(part); err == nil {
			if n <= 0 {
				return LagLimit{}, fmt.Errorf("%q: a lag limit must be positive", part)
			}
			l.Bytes = n
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil {
			return LagLimit{}, fmt.Errorf("%q is neither a byte size (16MB) nor a duration (30s)", part)
		}
		if d <= 0 {
			return LagLimit{}, fmt.Errorf("%q: a lag limit must be positive", part)
		}
		l.Time = d
	}
	return l, nil
}

func parseBytes(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("no number")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]int64{"": 1, "B": 1, "kB": 1 << 10, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
	m, ok := mult[strings.TrimSpace(s[i:])]
	if !ok {
		return 0, errors.New("bad unit")
	}
	return n * m, nil
}

// LoadConfig reads the [replication] section of <xroadDir>/conf.d/lbagent.ini (cluster-wide)
// and then <xroadDir>/conf.d/node.ini (node-specific, never replicated), node.ini winning.
// Missing files are fine. Keys: lag-limit (see ParseLagLimit), interval (a duration).
func LoadConfig(xroadDir string) (Config, error) {
	cfg := Config{Interval: DefaultInterval}
	for _, name := range []string{"lbagent.ini", "node.ini"} {
		path := filepath.Join(xroadDir, "conf.d", name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue
		}
		f, err := ini.LoadSources(ini.LoadOptions{Insensitive: true}, path)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", path, err)
		}
		sec, err := f.GetSection("replication")
		if err != nil {
			continue
		}
		for _, k := range sec.Keys() {
			v := strings.TrimSpace(k.String())
			switch k.Name() {
			case "lag-limit":
				if cfg.LagLimit, err = ParseLagLimit(v); err != nil {
					return Config{}, fmt.Errorf("%s: [replication] lag-limit: %w", path, err)
				}
			case "interval":
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return Config{}, fmt.Errorf("%s: [replication] interval: %q is not a positive duration (2s)", path, v)
				}
				cfg.Interval = d
			default:
				return Config{}, fmt.Errorf("%s: [replication] %s: unknown key (want lag-limit or interval)", path, k.Name())
			}
		}
	}
	return cfg, nil
}
