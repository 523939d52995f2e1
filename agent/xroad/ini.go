package xroad

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// LocalConf is X-Road's system configuration: conf.d/*.ini (packaged defaults, then
// override-*.ini) with conf.d/local.ini last, so local.ini wins, as X-Road loads them.
type LocalConf struct {
	file  *ini.File
	Files []string // the files read, in order
}

// ownFiles are conf.d files that are not X-Road system properties.
var ownFiles = map[string]bool{"node.ini": true, "lbagent.ini": true, "local.ini": true}

// ReadLocalConf reads dir/conf.d/*.ini. Missing files are fine (defaults apply); a file that
// exists but cannot be parsed is an error naming it.
func ReadLocalConf(dir string) (*LocalConf, error) {
	confd := filepath.Join(dir, "conf.d")
	matches, _ := filepath.Glob(filepath.Join(confd, "*.ini"))
	var base, overrides []string
	for _, m := range matches {
		name := filepath.Base(m)
		switch {
		case ownFiles[name]:
		case strings.HasPrefix(name, "override-"):
			overrides = append(overrides, m)
		default:
			base = append(base, m)
		}
	}
	sort.Strings(base)
	sort.Strings(overrides)
	files := append(base, overrides...)
	if _, err := os.Stat(filepath.Join(confd, "local.ini")); err == nil {
		files = append(files, filepath.Join(confd, "local.ini"))
	}
	lc := &LocalConf{file: ini.Empty(iniOptions), Files: files}
	for _, f := range files {
		if err := appendINI(lc.file, f); err != nil {
			return nil, err
		}
	}
	return lc, nil
}

var iniOptions = ini.LoadOptions{Insensitive: false, IgnoreInlineComment: true, AllowBooleanKeys: true,
	SkipUnrecognizableLines: false}

// appendINI merges file into f; later files win. Errors name the file (and the line, where
// the ini library reports one).
func appendINI(f *ini.File, path string) error {
	b, err := ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Append(b); err != nil {
		return fmt.Errorf("%s: %s", path, describeINIError(b, err))
	}
	return nil
}

// describeINIError adds the line number to ini's parse errors, which lack one.
func describeINIError(b []byte, err error) string {
	msg := err.Error()
	for i, line := range strings.Split(string(b), "\n") {
		l := strings.TrimSpace(line)
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if l[0] == '[' && !strings.HasSuffix(l, "]") {
			return fmt.Sprintf("line %d: unclosed section header %q", i+1, l)
		}
		if l[0] != '[' && !strings.ContainsAny(l, "=:") {
			return fmt.Sprintf("line %d: %q is neither a section nor key = value", i+1, l)
		}
	}
	return msg
}

// String returns [section] key, or def when unset.
func (c *LocalConf) String(section, key, def string) string {
	if !c.file.Section(section).HasKey(key) {
		return def
	}
	return strings.TrimSpace(c.file.Section(section).Key(key).String())
}

// Int returns [section] key as an integer, or def when unset.
func (c *LocalConf) Int(section, key string, def int) (int, error) {
	s := c.String(section, key, "")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: [%s] %s = %q: not an integer", c.source(section, key), section, key, s)
	}
	return n, nil
}

// Bool returns [section] key as a boolean (true/false, case-insensitive), or def when unset.
func (c *LocalConf) Bool(section, key string, def bool) (bool, error) {
	s := c.String(section, key, "")
	if s == "" {
		return def, nil
	}
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s: [%s] %s = %q: want true or false", c.source(section, key), section, key, s)
}

// source names the last file that set [section] key, for error messages.
func (c *LocalConf) source(section, key string) string {
	for i := len(c.Files) - 1; i >= 0; i-- {
		f, err := ini.LoadSources(iniOptions, c.Files[i])
		if err == nil && f.Section(section).HasKey(key) {
			return c.Files[i]
		}
	}
	return "conf.d"
}

// HealthCheck is the [proxy] health check port configuration.
type HealthCheck struct {
	Interface string // default 0.0.0.0
	Port      int    // 0 = disabled
}

// Addr is interface:port.
func (h HealthCheck) Addr() string { return fmt.Sprintf("%s:%d", h.Interface, h.Port) }

// HealthCheck reads [proxy] health-check-interface and health-check-port.
func (c *LocalConf) HealthCheck() (HealthCheck, error) {
	port, err := c.Int("proxy", "health-check-port", 0)
	if err != nil {
		return HealthCheck{}, err
	}
	if port < 0 || port > 65535 {
		return HealthCheck{}, fmt.Errorf("%s: [proxy] health-check-port = %d: not a TCP port (0-65535)",
			c.source("proxy", "health-check-port"), port)
	}
	return HealthCheck{Interface: c.String("proxy", "health-check-interface", "0.0.0.0"), Port: port}, nil
}

// Role is a node's place in the cluster.
type Role string

const (
	Primary    Role = "primary"
	Secondary  Role = "secondary"
	Standalone Role = "standalone"
)

// ReadNodeType reads dir/conf.d/node.ini [node] type: master|primary → primary,
// slave|secondary → secondary (case-insensitive); anything else or no file → standalone.
func ReadNodeType(dir string) (Role, error) {
	path := filepath.Join(dir, "conf.d", "node.ini")
	f := ini.Empty(iniOptions)
	if err := appendINI(f, path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Standalone, nil
		}
		return Standalone, err
	}
	switch strings.ToLower(strings.TrimSpace(f.Section("node").Key("type").String())) {
	case "master", "primary":
		return Primary, nil
	case "slave", "secondary":
		return Secondary, nil
	}
	return Standalone, nil
}

// Settings are lbagent's own settings: conf.d/lbagent.ini (cluster-wide, replicated with
// /etc/xroad) overlaid with conf.d/node.ini (node-specific, never replicated). Each component
// reads its own section.
type Settings struct {
	file  *ini.File
	files []string
}

// ReadSettings reads dir/conf.d/lbagent.ini then dir/conf.d/node.ini; both are optional.
func ReadSettings(dir string) (*Settings, error) {
	s := &Settings{file: ini.Empty(iniOptions)}
	for _, name := range []string{"lbagent.ini", "node.ini"} {
		p := filepath.Join(dir, "conf.d", name)
		if err := appendINI(s.file, p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		s.files = append(s.files, p)
	}
	return s, nil
}

// Has reports whether [section] key is set.
func (s *Settings) Has(section, key string) bool { return s.file.Section(section).HasKey(key) }

// String returns [section] key or def.
func (s *Settings) String(section, key, def string) string {
	if !s.Has(section, key) {
		return def
	}
	return strings.TrimSpace(s.file.Section(section).Key(key).String())
}

// Duration returns [section] key parsed as a Go duration ("5s", "250ms"), or def.
func (s *Settings) Duration(section, key string, def time.Duration) (time.Duration, error) {
	v := s.String(section, key, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: [%s] %s = %q: want a positive duration such as 5s or 250ms",
			s.source(section, key), section, key, v)
	}
	return d, nil
}

// Bool returns [section] key as true/false, or def.
func (s *Settings) Bool(section, key string, def bool) (bool, error) {
	v := strings.ToLower(s.String(section, key, ""))
	switch v {
	case "":
		return def, nil
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s: [%s] %s = %q: want true or false", s.source(section, key), section, key, v)
}

// Error returns an error about [section] key naming the file that set it.
func (s *Settings) Error(section, key, format string, args ...any) error {
	return fmt.Errorf("%s: [%s] %s = %q: %s", s.source(section, key), section, key,
		s.String(section, key, ""), fmt.Sprintf(format, args...))
}

func (s *Settings) source(section, key string) string {
	for i := len(s.files) - 1; i >= 0; i-- {
		f, err := ini.LoadSources(iniOptions, s.files[i])
		if err == nil && f.Section(section).HasKey(key) {
			return s.files[i]
		}
	}
	return "conf.d/lbagent.ini"
}
