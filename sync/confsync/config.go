package confsync

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/settings"
)

// Config is everything a sync needs. LoadConfig fills it from lbagent's INI files; command
// flags override single fields.
type Config struct {
	Primary          string        // host[:port] of the primary's sshd (port 22 when omitted)
	User             string        // login on the primary (the guide's xroad-slave)
	Identity         string        // private key file; "" = the first of DefaultIdentities that exists
	KnownHosts       string        // known_hosts file that must list the primary
	AcceptNewHostKey bool          // trust on first use: record an unknown host key (never a changed one)
	Source           string        // directory on the primary
	Target           string        // directory on this node
	Interval         time.Duration // time between passes of the worker
	Excludes         []string      // rsync-style patterns; nil = DefaultExcludes
	PauseFile        string        // while it exists no pass runs
	LogFile          string        // rsync --log-file style log; "" = none
	ConnectTimeout   time.Duration // TCP connect plus SSH handshake
	IOTimeout        time.Duration // a pass fails when no data arrives for this long
	MaxAgeWarning    time.Duration // Check warns when the last success is older
	Parallel         int           // files fetched at the same time
	// FullScan is the time between full listings of the primary. In between, a pass
	// lists only directories whose mtime moved, so a file rewritten in place (no rename)
	// or chmod-ed is seen within FullScan; one replaced by rename within Interval.
	FullScan time.Duration
	// StateDir holds this package's own files (lock, intent journal, racy set) outside the
	// target, in a subdirectory named after the target.
	StateDir string
	// SpaceReserve is the percentage of the target filesystem that a pass never uses: a
	// pass whose downloads would not fit above it is refused before anything is fetched.
	SpaceReserve float64
	// PreserveSpecialBits keeps setuid, setgid and sticky bits (dropped by default, as the
	// guide's rsync running as xroad does).
	PreserveSpecialBits bool
	// NumericOwners keeps owners by number when running as root (default: by name, as
	// the primary's user and group names resolve on this node).
	NumericOwners bool
	// ServeCommand is run on the primary over the SSH connection for change notices
	// (`lbagent sync serve`, inotify); "" = poll only. A primary without it is polled.
	ServeCommand string
}

// Defaults for a secondary set up as in the X-Road load-balancer guide.
const (
	DefaultUser          = "xroad-slave"
	DefaultKnownHosts    = "/var/lib/xroad/.ssh/known_hosts"
	DefaultDir           = "/etc/xroad/"
	DefaultPauseFile     = "/var/tmp/xroad/sync-disabled"
	DefaultLogFile       = "/var/log/xroad/slave-sync.log"
	DefaultInterval      = time.Second
	DefaultConnect       = 5 * time.Second
	DefaultIO            = 10 * time.Second
	DefaultMaxAgeWarning = 5 * time.Minute
	DefaultParallel      = 16
	DefaultFullScan      = 10 * time.Second
	DefaultStateDir      = "/var/lib/lbagent/sync"
	DefaultSpaceReserve  = 5.0 // percent
	DefaultServeCommand  = "lbagent sync serve"
)

// DefaultIdentities are tried in order when Identity is empty (the xroad user's keys).
var DefaultIdentities = []string{"/var/lib/xroad/.ssh/id_ed25519", "/var/lib/xroad/.ssh/id_ecdsa", "/var/lib/xroad/.ssh/id_rsa"}

// DefaultConfig returns the defaults; Primary is left empty (it has none).
func DefaultConfig() Config {
	return Config{
		User: DefaultUser, KnownHosts: DefaultKnownHosts, Source: DefaultDir, Target: DefaultDir,
		Interval: DefaultInterval, Excludes: append([]string(nil), DefaultExcludes...),
		PauseFile: DefaultPauseFile, LogFile: DefaultLogFile, ConnectTimeout: DefaultConnect,
		IOTimeout: DefaultIO, MaxAgeWarning: DefaultMaxAgeWarning, Parallel: DefaultParallel,
		FullScan: DefaultFullScan, StateDir: DefaultStateDir, SpaceReserve: DefaultSpaceReserve,
		ServeCommand: DefaultServeCommand,
	}
}

// LoadConfig reads the [sync] section of <xroadDir>/conf.d/lbagent.ini and then of
// <xroadDir>/conf.d/node.ini over DefaultConfig, with the one settings loader
// (settings.LoadLbagent): missing files are fine; an unknown key or a bad value is an error
// naming the file, line, section and key.
func LoadConfig(xroadDir string) (Config, error) {
	c := DefaultConfig()
	s, err := settings.LoadLbagent(xroadDir)
	if err != nil {
		return c, fmt.Errorf("%w: %w", err, ErrConfig)
	}
	for _, k := range s.Keys("sync") {
		v, _ := s.Get("sync", k)
		if v.Value == "" {
			continue // an empty value keeps the default
		}
		if err := c.set(k, v.Value); err != nil {
			return c, fmt.Errorf("%w: %w", s.Error("sync", k, "%v", err), ErrConfig)
		}
	}
	return c, nil
}

// set applies one INI key.
func (c *Config) set(key, v string) error {
	v = strings.TrimSpace(v)
	var err error
	switch key {
	case "primary":
		c.Primary = v
	case "user":
		c.User = v
	case "identity":
		c.Identity = v
	case "known-hosts":
		c.KnownHosts = v
	case "accept-new-host-key":
		c.AcceptNewHostKey, err = parseBool(v)
	case "source":
		c.Source = v
	case "target":
		c.Target = v
	case "interval":
		c.Interval, err = parseDuration(v)
	case "exclude":
		c.Excludes = splitList(v)
	case "pause-file":
		c.PauseFile = v
	case "log-file":
		c.LogFile = v
	case "connect-timeout":
		c.ConnectTimeout, err = parseDuration(v)
	case "io-timeout":
		c.IOTimeout, err = parseDuration(v)
	case "max-age-warning":
		c.MaxAgeWarning, err = parseDuration(v)
	case "full-scan-interval":
		c.FullScan, err = parseDuration(v)
	case "state-dir":
		c.StateDir = v
	case "space-reserve":
		c.SpaceReserve, err = parsePercent(v)
	case "preserve-special-bits":
		c.PreserveSpecialBits, err = parseBool(v)
	case "serve-command":
		c.ServeCommand = v
	case "numeric-owners":
		c.NumericOwners, err = parseBool(v)
	case "parallel":
		c.Parallel, err = strconv.Atoi(v)
		if err != nil || c.Parallel < 1 {
			err = fmt.Errorf("%q is not a positive number: %w", v, ErrConfig)
		}
	default:
		return fmt.Errorf("unknown key: %w", ErrConfig)
	}
	return err
}

// parseDuration takes Go durations ("1s", "500ms") or plain seconds ("60"): settings.ParseDuration.
func parseDuration(v string) (time.Duration, error) {
	d, err := settings.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (like 1s, 500ms or 60): %w", v, ErrConfig)
	}
	return d, nil
}

// parsePercent takes "5", "5%" or "2.5%" (0 to 50).
func parsePercent(v string) (float64, error) {
	n, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || n < 0 || n > 50 {
		return 0, fmt.Errorf("%q is not a percentage from 0 to 50: %w", v, ErrConfig)
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	b, err := settings.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false: %w", v, ErrConfig)
	}
	return b, nil
}

// splitList splits a comma-separated list; empty items are dropped.
func splitList(v string) []string {
	out := []string{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate checks the configuration for a pass (flags included); errors name the setting.
func (c Config) Validate() error {
	if c.Primary == "" {
		return fmt.Errorf("primary: not set (the primary node's host[:port]): %w", ErrConfig)
	}
	if _, _, err := splitHostPort(c.Primary); err != nil {
		return fmt.Errorf("primary: %w", err)
	}
	if c.User == "" {
		return fmt.Errorf("user: empty: %w", ErrConfig)
	}
	if c.KnownHosts == "" {
		return fmt.Errorf("known-hosts: empty (host keys are always verified): %w", ErrConfig)
	}
	if !strings.HasPrefix(c.Source, "/") {
		return fmt.Errorf("source: %q is not an absolute path: %w", c.Source, ErrConfig)
	}
	if _, err := cleanTarget(c.Target); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("state-dir: %q is not an absolute path: %w", c.StateDir, ErrConfig)
	}
	if t, _ := cleanTarget(c.Target); within(filepath.Clean(c.StateDir), t) || within(t, filepath.Clean(c.StateDir)) {
		return fmt.Errorf("state-dir: %q overlaps the target %q (the target holds only the primary's files): %w", c.StateDir, c.Target, ErrConfig)
	}
	if c.SpaceReserve < 0 || c.SpaceReserve > 50 {
		return fmt.Errorf("space-reserve: %v is not a percentage from 0 to 50: %w", c.SpaceReserve, ErrConfig)
	}
	if _, err := NewExcludes(c.Excludes); err != nil {
		return fmt.Errorf("exclude: %w", err)
	}
	for name, d := range map[string]time.Duration{"interval": c.Interval, "connect-timeout": c.ConnectTimeout, "io-timeout": c.IOTimeout} {
		if d <= 0 {
			return fmt.Errorf("%s: must be positive: %w", name, ErrConfig)
		}
	}
	if c.FullScan < 0 { // 0: the default
		return fmt.Errorf("full-scan-interval: must be positive: %w", ErrConfig)
	}
	return nil
}

// splitHostPort accepts host, host:port, [v6] and [v6]:port; the port defaults to 22.
func splitHostPort(s string) (string, string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), "22"
		if strings.Count(s, ":") == 1 {
			return "", "", fmt.Errorf("%q is not host[:port]: %w", s, ErrConfig)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q has a bad port: %w", s, ErrConfig)
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return "", "", fmt.Errorf("%q has a bad host: %w", s, ErrConfig)
	}
	return host, port, nil
}

// cleanTarget returns the cleaned absolute target; "/" and relative paths are refused.
func cleanTarget(t string) (string, error) {
	if !filepath.IsAbs(t) {
		return "", fmt.Errorf("%q is not an absolute path: %w", t, ErrBadTarget)
	}
	c := filepath.Clean(t)
	if c == "/" {
		return "", fmt.Errorf("refusing to sync into %q: %w", t, ErrBadTarget)
	}
	return c, nil
}

// within reports whether p is dir or lies below it (both cleaned).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// identity returns the key file to use.
func (c Config) identity() (string, error) {
	if c.Identity != "" {
		return c.Identity, nil
	}
	for _, p := range DefaultIdentities {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("identity: none given and none of %s exists: %w", strings.Join(DefaultIdentities, ", "), ErrConfig)
}
