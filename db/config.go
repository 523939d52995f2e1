package db

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/settings"
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
// and then <xroadDir>/conf.d/node.ini (node-specific, never replicated), node.ini winning,
// with the one settings loader (settings.LoadLbagent). Missing files are fine. Keys: lag-limit
// (see ParseLagLimit), interval (a duration).
func LoadConfig(xroadDir string) (Config, error) {
	s, err := settings.LoadLbagent(xroadDir)
	if err != nil {
		return Config{}, err
	}
	return ConfigFrom(s)
}

// ConfigFrom reads the [replication] section of loaded settings.
func ConfigFrom(s *settings.Settings) (Config, error) {
	cfg := Config{Interval: DefaultInterval}
	var err error
	if cfg.LagLimit, err = ParseLagLimit(s.String("replication", "lag-limit", "")); err != nil {
		return Config{}, s.Error("replication", "lag-limit", "%v", err)
	}
	if cfg.Interval, err = s.Duration("replication", "interval", DefaultInterval); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
