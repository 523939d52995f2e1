package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/xroad-lb/lbkit/agent"
	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/push"
	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/sync/confsync"
)

// configSummary is what `lbagent run --check-config` prints about a configuration that
// loaded: every port, peer and the primary, then warnings about settings that load but are
// probably not what the operator wants.
type configSummary struct {
	lines    [][2]string
	warnings []string
}

func (s *configSummary) add(name, format string, args ...any) {
	s.lines = append(s.lines, [2]string{name, fmt.Sprintf(format, args...)})
}

func (s *configSummary) warn(format string, args ...any) {
	s.warnings = append(s.warnings, fmt.Sprintf(format, args...))
}

// summarize describes cfg and its parts' settings (each read by its own loader).
func summarize(cfg agent.Config, parts []string) (*configSummary, error) {
	s := &configSummary{}
	files := append(append([]string(nil), cfg.ConfFiles...), cfg.Settings.Files()...)
	s.add("files", "%s", orNone(strings.Join(files, ", ")))
	s.add("role", "%s", cfg.Role)
	if cfg.Health.Port == 0 {
		s.add("health port", "disabled ([proxy] health-check-port = 0)")
		s.warn("[proxy] health-check-port = 0: the balancer cannot probe this node")
	} else {
		s.add("health port", "%s (any method, any path; /status, /metrics, /lb)", cfg.Health.Addr())
		if ip, err := netip.ParseAddr(cfg.Health.Interface); err == nil && ip.IsLoopback() {
			s.warn("[proxy] health-check-interface = %s: a balancer on another machine cannot reach the health port", cfg.Health.Interface)
		}
	}
	ac, err := agentcheck.LoadConfig(cfg.Settings, cfg.Health)
	if err != nil {
		return nil, err
	}
	if ac.Listen == "" {
		s.add("agent-check port", "off")
	} else {
		s.add("agent-check port", "%s (maintenance word %s)", ac.Listen, ac.MaintenanceWord)
	}
	s.add("admin port", "%s (loopback peers only)", cfg.AdminListen)
	if len(ac.Balancers) == 0 {
		s.add("balancers", "any peer ([agent-check] balancers not set)")
	} else {
		var b []string
		for _, p := range ac.Balancers {
			b = append(b, p.String())
		}
		s.add("balancers", "%s", strings.Join(b, ", "))
	}
	pc, err := push.LoadConfig(cfg.Settings)
	if err != nil {
		return nil, err
	}
	if pc.Enabled() {
		s.add("push", "%s backend %s server %s (%s)", pc.Socket, pc.Backend, pc.Server, pc.MaintenanceWord)
	} else {
		s.add("push", "off")
	}
	s.add("serverconf", "%s", cfg.ServerConf)
	var tcp []string
	for _, c := range cfg.TCPChecks {
		tcp = append(tcp, c.Name+"="+c.Addr)
		if _, port, err := net.SplitHostPort(c.Addr); err == nil && port == "0" {
			s.warn("[lbagent] tcp-checks %s: port 0 never accepts connections", c.Name)
		}
	}
	s.add("checks", "timeout %s, success-ttl %s, failure-ttl %s; tcp: %s", cfg.Timeout, cfg.PassTTL, cfg.FailTTL,
		orNone(strings.Join(tcp, ", ")))
	if cfg.MaintenanceStateFile == "" {
		s.add("maintenance", "in memory (off after a restart, as X-Road)")
	} else {
		s.add("maintenance", "kept in %s", cfg.MaintenanceStateFile)
	}
	hasSync := len(cfg.Settings.Keys("sync")) > 0
	switch cfg.Role {
	case xroad.Secondary:
		sc, err := confsync.LoadConfig(cfg.XRoadDir)
		if err != nil {
			return nil, err
		}
		if sc.Primary == "" {
			s.add("primary", "not set")
			s.warn("[sync] primary is not set: this secondary does not copy the primary's configuration")
		} else {
			s.add("primary", "%s (ssh as %s, %s -> %s every %s)", sc.Primary, sc.User, sc.Source, sc.Target, sc.Interval)
		}
		rc, err := db.ConfigFrom(cfg.Settings)
		if err != nil {
			return nil, err
		}
		s.add("replication", "lag limit %s, checked every %s", rc.LagLimit, rc.Interval)
	default:
		if hasSync {
			s.warn("[sync] is set but this node is %s: only secondaries sync", cfg.Role)
		}
	}
	s.add("components", "%s", orNone(strings.Join(parts, ", ")))
	return s, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// print writes the summary: "configuration OK", one aligned line per item, then warnings.
func (s *configSummary) print(w io.Writer, role xroad.Role) {
	fmt.Fprintf(w, "configuration OK: role %s, %d warning(s)\n", role, len(s.warnings))
	for _, l := range s.lines {
		fmt.Fprintf(w, "  %-17s %s\n", l[0]+":", l[1])
	}
	for _, m := range s.warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
}
