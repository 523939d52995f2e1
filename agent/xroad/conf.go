package xroad

import (
	"fmt"

	"github.com/xroad-lb/lbkit/settings"
)

// HealthCheck is the [proxy] health check port configuration.
type HealthCheck struct {
	Interface string // default 0.0.0.0
	Port      int    // 0 = disabled
}

// Addr is interface:port.
func (h HealthCheck) Addr() string { return fmt.Sprintf("%s:%d", h.Interface, h.Port) }

// ReadHealthCheck reads [proxy] health-check-interface and health-check-port from X-Road's
// system configuration (settings.LoadXRoad).
func ReadHealthCheck(x *settings.XRoad) (HealthCheck, error) {
	port, err := x.Int("proxy", "health-check-port", 0, 0, 65535)
	if err != nil {
		return HealthCheck{}, err
	}
	return HealthCheck{Interface: x.String("proxy", "health-check-interface", "0.0.0.0"), Port: port}, nil
}

// Role is a node's place in the cluster.
type Role string

const (
	Primary    Role = "primary"
	Secondary  Role = "secondary"
	Standalone Role = "standalone"
)

// RoleOf is node.ini's [node] type: master|primary → primary, slave|secondary → secondary
// (case-insensitive); unset → standalone. Other values are refused when the file is read.
func RoleOf(s *settings.Settings) Role { return Role(s.NodeType()) }

// ReadNodeType reads dir/conf.d/node.ini (and lbagent.ini, which are validated together)
// and returns the node's role; no file → standalone.
func ReadNodeType(dir string) (Role, error) {
	s, err := settings.LoadLbagent(dir)
	if err != nil {
		return Standalone, err
	}
	return RoleOf(s), nil
}
