package push

import (
	"net"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/settings"
)

// Section is the settings section in lbagent.ini / node.ini.
const Section = "push"

// DefaultTimeout bounds one push.
const DefaultTimeout = 2 * time.Second

// Config says where to push.
type Config struct {
	Socket          string // runtime API: /path/admin.sock, unix:/path, ipv4@host:port; "" = off
	Backend, Server string
	MaintenanceWord string // drain (default) or maint
	Timeout         time.Duration
	// State records a drain/maint push set, so that it is lifted after a restart: the
	// agent's one state file (agentcheck.OpenState of [agent-check] state-file), shared with
	// the agent-check. nil = memory only. Not read from the settings.
	State State
	// Clock times the retries of a failed push; nil = the real clock. Not read from the
	// settings.
	Clock clockwork.Clock
}

// Enabled reports whether pushing is configured.
func (c Config) Enabled() bool { return c.Socket != "" }

// LoadConfig reads the [push] section (off unless haproxy-socket is set):
//
//	haproxy-socket   = /run/haproxy/admin.sock | ipv4@10.0.0.5:9999
//	backend          = xroad
//	server           = node2            (this node's server name in that backend)
//	maintenance-word = drain | maint    (default: [agent-check] maintenance-word, else drain)
//	timeout          = 2s
//
// Errors name the file, section and key.
func LoadConfig(s *settings.Settings) (Config, error) {
	c := Config{Socket: s.String(Section, "haproxy-socket", "")}
	if c.Socket == "" || strings.EqualFold(c.Socket, "off") {
		return Config{}, nil
	}
	if !strings.HasPrefix(c.Socket, "/") && !strings.HasPrefix(c.Socket, "unix:") && !strings.HasPrefix(c.Socket, "unix@") {
		addr := strings.TrimPrefix(strings.TrimPrefix(c.Socket, "ipv4@"), "ipv6@")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return c, s.Error(Section, "haproxy-socket", "want a unix socket path or ipv4@host:port")
		}
	}
	c.Backend = s.String(Section, "backend", "")
	c.Server = s.String(Section, "server", "")
	for _, kv := range [][2]string{{"backend", c.Backend}, {"server", c.Server}} {
		key, v := kv[0], kv[1]
		if v == "" || strings.ContainsAny(v, " \t/;#") {
			return c, s.Error(Section, key, "want this node's %s name in HAProxy (required with haproxy-socket)", key)
		}
	}
	c.MaintenanceWord = strings.ToLower(s.String(Section, "maintenance-word",
		s.String("agent-check", "maintenance-word", "drain")))
	if c.MaintenanceWord != "drain" && c.MaintenanceWord != "maint" {
		return c, s.Error(Section, "maintenance-word", "want drain or maint")
	}
	var err error
	if c.Timeout, err = s.Duration(Section, "timeout", DefaultTimeout); err != nil {
		return c, err
	}
	return c, nil
}
