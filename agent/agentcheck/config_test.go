package agentcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/settings"
)

// load reads lbagent.ini and node.ini (bodies; "" = no file) with the settings loader and
// then LoadConfig; either's error is returned.
func load(t *testing.T, lbagent, node string, health xroad.HealthCheck) (Config, error) {
	t.Helper()
	dir := t.TempDir()
	confd := filepath.Join(dir, "conf.d")
	if err := os.MkdirAll(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"lbagent.ini": lbagent, "node.ini": node} {
		if body == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(confd, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := settings.LoadLbagent(dir)
	if err != nil {
		return Config{}, err
	}
	return LoadConfig(s, health)
}

func TestLoadConfig(t *testing.T) {
	health := xroad.HealthCheck{Interface: "127.0.0.2", Port: 5588}
	tests := []struct {
		name          string
		lbagent, node string
		check         func(c Config) bool
		want          string
	}{
		{"defaults", "", "", func(c Config) bool {
			return c.Listen == "127.0.0.2:5589" && c.MaintenanceWord == "drain" && c.Weight == 0 &&
				c.ReadyFor == DefaultReadyFor && c.Dynamic.Source == ""
		}, "listen on the health interface, port 5589, drain"},
		{"off", "[agent-check]\nlisten = off\n", "", func(c Config) bool { return c.Listen == "" }, "disabled"},
		{"node.ini wins", "[agent-check]\nmaintenance-word = drain\nweight = 80%\n",
			"[agent-check]\nmaintenance-word = MAINT\nlisten = 127.0.0.3:6000\nready-for = 30s\n",
			func(c Config) bool {
				return c.MaintenanceWord == "maint" && c.Listen == "127.0.0.3:6000" && c.Weight == 80 &&
					c.ReadyFor == 30*time.Second
			}, "maint on 127.0.0.3:6000, weight 80, ready-for 30s"},
		{"dynamic", "[agent-check]\ndynamic-weight = connections\ndynamic-high = 500\n", "", func(c Config) bool {
			d := c.Dynamic
			return d.Source == SourceConnections && d.Port == 5500 && d.Low == 100 && d.High == 500 && d.Min == 10
		}, "connections, port 5500, 100..500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.lbagent, tt.node, health)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("got %+v; want %s", c, tt.want)
			}
		})
	}
	// With the health check port disabled (X-Road's default), the agent-check port is off too,
	// unless listen is given.
	disabled := xroad.HealthCheck{Interface: "0.0.0.0", Port: 0}
	if c, err := load(t, "", "", disabled); err != nil || c.Listen != "" {
		t.Errorf("health port 0: listen %q, %v; want off", c.Listen, err)
	}
	if c, err := load(t, "[agent-check]\nlisten = 127.0.0.1:5589\n", "", disabled); err != nil || c.Listen != "127.0.0.1:5589" {
		t.Errorf("health port 0 with listen: %q, %v; want 127.0.0.1:5589", c.Listen, err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct{ ini, want string }{
		{"[agent-check]\nlisten = nowhere\n", `lbagent.ini:2: [agent-check] listen = "nowhere": want ip:port`},
		{"[agent-check]\nmaintenance-word = stop\n", `lbagent.ini:2: [agent-check] maintenance-word = "stop": want drain or maint`},
		{"[agent-check]\nweight = 0\n", `lbagent.ini:2: [agent-check] weight = "0": want a percentage from 1 to 100`},
		{"[agent-check]\nready-for = soon\n", `lbagent.ini:2: [agent-check] ready-for = "soon": want a duration from 1ms to 24h`},
		{"[agent-check]\ndynamic-weight = disk\n", `lbagent.ini:2: [agent-check] dynamic-weight = "disk": want off, connections or load`},
		{"[agent-check]\ndynamic-weight = load\ndynamic-low = 2\ndynamic-high = 1\n", `lbagent.ini:2: [agent-check] dynamic-weight = "load": high (1) must be above low (2)`},
		{"[agent-check]\ndynamic-weight = load\ndynamic-min = x\n", `lbagent.ini:3: [agent-check] dynamic-min = "x": want a whole number from 0 to 100`},
	}
	for _, tt := range tests {
		_, err := load(t, tt.ini, "", xroad.HealthCheck{Interface: "0.0.0.0"})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadConfig(%q) got %v; want an error containing %q", tt.ini, err, tt.want)
		}
	}
}

// TestDefaultStateFile: the state file defaults into the state directory when it exists and
// is writable (systemd's StateDirectory=lbagent makes it); otherwise memory only. A temporary
// directory stands in for /var/lib/lbagent.
func TestDefaultStateFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := stateDir
	t.Cleanup(func() { stateDir = old })
	health := xroad.HealthCheck{Interface: "127.0.0.1", Port: 5588}
	tests := []struct {
		name, dir, ini, want string
	}{
		{"directory exists", dir, "", filepath.Join(dir, "agentcheck.state")},
		{"directory missing", missing, "", ""},
		{"not a directory", notDir, "", ""},
		{"off", dir, "[agent-check]\nstate-file = off\n", ""},
		{"empty", dir, "[agent-check]\nstate-file =\n", ""},
		{"explicit path", missing, "[agent-check]\nstate-file = /run/x.state\n", "/run/x.state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir = tt.dir
			c, err := load(t, tt.ini, "", health)
			if err != nil {
				t.Fatal(err)
			}
			if c.StateFile != tt.want {
				t.Errorf("state file %q; want %q", c.StateFile, tt.want)
			}
		})
	}
	if os.Geteuid() != 0 { // root may write anywhere: the mode cannot refuse it
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		if got := DefaultStateFile(ro); got != "" {
			t.Errorf("read-only directory: %q; want memory only", got)
		}
	}
}
