package settings

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LbagentFiles are the files LoadLbagent reads, relative to the X-Road directory, in order: a
// later file's keys win (node.ini is node-specific and never replicated; lbagent.ini is
// cluster-wide).
var LbagentFiles = []string{"conf.d/lbagent.ini", "conf.d/node.ini"}

// Enumerations.
var (
	NodeTypes        = []string{"master", "slave", "primary", "secondary", "standalone"}
	MaintenanceWords = []string{"drain", "maint"}
	DynamicSources   = []string{"off", "connections", "load"}
)

// LbagentSchema is every section and key of lbagent.ini and node.ini. Adding a key is one
// line here; its owner reads it with the Settings getters.
var LbagentSchema = Schema{
	{Name: "node", Only: "node.ini", Keys: []Key{
		{"type", OneOf(NodeTypes...)},
	}},
	{Name: "lbagent", Keys: []Key{
		{"check-timeout", Duration(10*time.Millisecond, 10*time.Minute)},
		{"success-ttl", Duration(time.Millisecond, time.Hour)},
		{"failure-ttl", Duration(time.Millisecond, time.Hour)},
		{"tcp-checks", tcpChecks},
		{"maintenance-state-file", AbsPath()},
		{"max-procs", Int(0, 4096)},
		{"max-connections", Int(16, 1<<24)},
		{"max-connections-per-ip", Int(1, 1<<24)},
		{"max-rate-per-ip", Int(0, 1<<24)},
		{"read-timeout", Duration(100*time.Millisecond, 10*time.Minute)},
		{"idle-timeout", Duration(100*time.Millisecond, 10*time.Minute)},
		{"status-token", minLen(16)},
		{"xroad-version-file", AbsPath()},
	}},
	{Name: "agent-check", Keys: []Key{
		{"listen", ListenOrOff()},
		{"maintenance-word", OneOf(MaintenanceWords...)},
		{"weight", percent(1, 100)},
		{"ready-for", Duration(time.Millisecond, 24*time.Hour)},
		{"state-file", PathOrOff()},
		{"dynamic-weight", orOff(OneOf(DynamicSources...))},
		{"dynamic-port", Port()},
		{"dynamic-low", Number(0, 1e9, false)},
		{"dynamic-high", Number(0, 1e9, false)},
		{"dynamic-min", Int(0, 100)},
		{"dynamic-step", Int(0, 100)},
		{"dynamic-interval", Duration(10*time.Millisecond, time.Hour)},
		{"balancers", Prefixes()},
	}},
	{Name: "push", Keys: []Key{
		{"haproxy-socket", Text()},
		{"backend", Text()},
		{"server", Text()},
		{"maintenance-word", OneOf(MaintenanceWords...)},
		{"timeout", Duration(10*time.Millisecond, time.Minute)},
	}},
	{Name: "replication", Keys: []Key{
		{"lag-limit", Text()}, // db.ParseLagLimit
		{"interval", Duration(10*time.Millisecond, time.Hour)},
	}},
	{Name: "sync", Keys: []Key{
		{"primary", Text()},
		{"user", Text()},
		{"identity", AbsPath()},
		{"known-hosts", AbsPath()},
		{"accept-new-host-key", Bool()},
		{"source", AbsPath()},
		{"target", AbsPath()},
		{"interval", Duration(10*time.Millisecond, 24*time.Hour)},
		{"exclude", Text()},
		{"pause-file", AbsPath()},
		{"log-file", Text()},
		{"connect-timeout", Duration(10*time.Millisecond, 10*time.Minute)},
		{"io-timeout", Duration(10*time.Millisecond, time.Hour)},
		{"max-age-warning", Duration(time.Second, 30*24*time.Hour)},
		{"full-scan-interval", Duration(10*time.Millisecond, 24*time.Hour)},
		{"state-dir", AbsPath()},
		{"space-reserve", Number(0, 50, true)},
		{"preserve-special-bits", Bool()},
		{"serve-command", Text()},
		{"numeric-owners", Bool()},
		{"parallel", Int(1, 256)},
	}},
}

// percent is a whole percentage from lo to hi, "%" optional.
func percent(lo, hi int) Check {
	return func(v string) error {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a percentage from %d to %d", lo, hi)
		}
		return nil
	}
}

// orOff also takes the words that turn a setting off (off, false, no).
func orOff(c Check) Check {
	return func(v string) error {
		if isOff(v) {
			return nil
		}
		return c(v)
	}
}

func minLen(n int) Check {
	return func(v string) error {
		if len(v) < n {
			return fmt.Errorf("want at least %d characters", n)
		}
		return nil
	}
}

// tcpChecks is name=host:port, name=host:port.
func tcpChecks(v string) error {
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
		if _, _, err := net.SplitHostPort(addr); !ok || name == "" || err != nil {
			return fmt.Errorf("item %q: want name=host:port", item)
		}
	}
	return nil
}

// Value is a key's value and where it was set.
type Value struct {
	Value string
	Path  string
	Line  int
}

// Settings are lbagent's own settings: lbagent.ini overlaid with node.ini, validated against
// LbagentSchema. Getters take a default for keys that are not set or empty.
type Settings struct {
	files []string
	vals  map[string]map[string]Value
	order map[string][]string
}

// LoadLbagent reads <xroadDir>/conf.d/lbagent.ini then <xroadDir>/conf.d/node.ini (both
// optional) by our rules and validates them against LbagentSchema.
func LoadLbagent(xroadDir string) (*Settings, error) {
	s := newSettings()
	for _, rel := range LbagentFiles {
		p := filepath.Join(xroadDir, rel)
		f, err := ReadFile(p, OurRules)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := s.add(f); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ParseLbagent reads one lbagent.ini or node.ini (name: its path or base name, which decides
// where [node] may appear) from data.
func ParseLbagent(name string, data []byte) (*Settings, error) {
	f, err := Parse(name, data, OurRules)
	if err != nil {
		return nil, err
	}
	s := newSettings()
	return s, s.add(f)
}

func newSettings() *Settings {
	return &Settings{vals: map[string]map[string]Value{}, order: map[string][]string{}}
}

func (s *Settings) add(f *File) error {
	if err := LbagentSchema.Validate(f); err != nil {
		return err
	}
	s.files = append(s.files, f.Path)
	for _, sec := range f.Sections {
		m := s.vals[sec.Name]
		if m == nil {
			m = map[string]Value{}
			s.vals[sec.Name] = m
		}
		for _, e := range sec.Entries {
			if _, ok := m[e.Key]; !ok {
				s.order[sec.Name] = append(s.order[sec.Name], e.Key)
			}
			m[e.Key] = Value{e.Value, f.Path, e.Line}
		}
	}
	return nil
}

// Files are the files read, in order.
func (s *Settings) Files() []string { return append([]string(nil), s.files...) }

// Keys are the keys set in section, in the order first seen.
func (s *Settings) Keys(section string) []string { return append([]string(nil), s.order[section]...) }

// Get returns [section] key and where it was set.
func (s *Settings) Get(section, key string) (Value, bool) {
	v, ok := s.vals[section][key]
	return v, ok
}

// Has reports whether [section] key is set (even to an empty value).
func (s *Settings) Has(section, key string) bool {
	_, ok := s.Get(section, key)
	return ok
}

// String returns [section] key, or def when unset or empty.
func (s *Settings) String(section, key, def string) string {
	if v, ok := s.Get(section, key); ok && v.Value != "" {
		return v.Value
	}
	return def
}

// Duration returns [section] key as a duration (see ParseDuration), or def.
func (s *Settings) Duration(section, key string, def time.Duration) (time.Duration, error) {
	v := s.String(section, key, "")
	if v == "" {
		return def, nil
	}
	d, err := ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, s.Error(section, key, "want a positive duration such as 5s or 250ms")
	}
	return d, nil
}

// Int returns [section] key as a whole number, or def.
func (s *Settings) Int(section, key string, def int) (int, error) {
	v := s.String(section, key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, s.Error(section, key, "want a whole number")
	}
	return n, nil
}

// Bool returns [section] key as true/false (yes/no, on/off, 1/0), or def.
func (s *Settings) Bool(section, key string, def bool) (bool, error) {
	v := s.String(section, key, "")
	if v == "" {
		return def, nil
	}
	b, err := ParseBool(v)
	if err != nil {
		return false, s.Error(section, key, "want true or false")
	}
	return b, nil
}

// NodeType is node.ini's [node] type as a role: primary (master), secondary (slave) or
// standalone (unset).
func (s *Settings) NodeType() string {
	switch strings.ToLower(s.String("node", "type", "")) {
	case "master", "primary":
		return "primary"
	case "slave", "secondary":
		return "secondary"
	}
	return "standalone"
}

// Error returns an error about [section] key that names the file and line that set it.
func (s *Settings) Error(section, key, format string, args ...any) error {
	v, ok := s.Get(section, key)
	if !ok {
		where := "conf.d/lbagent.ini"
		if len(s.files) > 0 {
			where = s.files[0]
		}
		return errorf(where, 0, "[%s] %s is not set: %s", section, key, fmt.Sprintf(format, args...))
	}
	return errorf(v.Path, v.Line, "[%s] %s = %q: %s", section, key, v.Value, fmt.Sprintf(format, args...))
}
