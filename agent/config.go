package agent

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/connlimit"
	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/agent/redact"
	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/settings"
)

// Section of lbagent.ini / node.ini with the daemon's own settings.
const Section = "lbagent"

// Flags are the command-line overrides of `lbagent run`.
type Flags struct {
	XRoadDir             string // default /etc/xroad
	OCSPCacheDir         string // default /var/cache/xroad
	AdminListen          string // default 127.0.0.1:5566
	HealthListen         string // overrides local.ini's [proxy] health-check-interface:port
	MaintenanceStateFile string // overrides [lbagent] maintenance-state-file
}

// TCPCheck is a local port that must accept connections.
type TCPCheck struct{ Name, Addr string }

// Config is everything the daemon needs, read from X-Road's files and lbagent's settings.
type Config struct {
	XRoadDir, OCSPCacheDir, AdminListen string
	Health                              xroad.HealthCheck // Port 0 = disabled, as X-Road
	Role                                xroad.Role
	ServerConf                          xroad.DBSettings
	ConfFiles                           []string // X-Road ini files read, in order
	Timeout, PassTTL, FailTTL           time.Duration
	MemoryThreshold                     float64 // percent; 0 = check off
	MemInfo                             string  // default /proc/meminfo
	HSMCheck                            bool    // [proxy] hsm-health-check-enabled (not supported: logged)
	TCPChecks                           []TCPCheck
	MaintenanceStateFile                string
	MaxProcs                            int                // CPUs the daemon may use at once (GOMAXPROCS); 0 = all
	Settings                            *settings.Settings // lbagent.ini + node.ini, for components

	// The public ports (health and agent-check): docs/security.md.
	MaxConns, MaxConnsPerIP  int           // 0 = defaults (sized from RLIMIT_NOFILE; 16)
	RatePerIP                int           // connections + requests a second per address; 0 = default, -1 = off
	ReadTimeout, IdleTimeout time.Duration // one request's read; a keep-alive wait
	StatusToken              string        // Bearer token for the full /status on the health port
	Balancers                []netip.Prefix

	// Redactor masks the serverconf password in /status, /metrics and (given to the logger by
	// its maker) the log. LoadConfig makes it.
	Redactor *redact.Redactor
}

// LoadConfig reads the node's files. Every error names the file and the field at fault.
func LoadConfig(f Flags) (Config, error) {
	c := Config{XRoadDir: f.XRoadDir, OCSPCacheDir: f.OCSPCacheDir, AdminListen: f.AdminListen,
		MemInfo: "/proc/meminfo"}
	if c.XRoadDir == "" {
		c.XRoadDir = xroad.DefaultDir
	}
	if c.OCSPCacheDir == "" {
		c.OCSPCacheDir = xroad.DefaultOCSPCache
	}
	if c.AdminListen == "" {
		c.AdminListen = xroad.DefaultAdmin
	}
	if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
		return c, fmt.Errorf("--admin-listen %q: want host:port", c.AdminListen)
	}
	lc, err := settings.LoadXRoad(c.XRoadDir)
	if err != nil {
		return c, err
	}
	c.ConfFiles = lc.Files()
	if c.Health, err = xroad.ReadHealthCheck(lc); err != nil {
		return c, err
	}
	if f.HealthListen != "" {
		host, port, err := net.SplitHostPort(f.HealthListen)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 0 || n > 65535 {
			return c, fmt.Errorf("--health-listen %q: want host:port", f.HealthListen)
		}
		c.Health = xroad.HealthCheck{Interface: host, Port: n}
	}
	if thr := lc.String("proxy", "memory-usage-threshold", ""); thr != "" {
		v, err := strconv.ParseFloat(thr, 64)
		if err != nil || v <= 0 || v > 100 {
			return c, lc.Error("proxy", "memory-usage-threshold", "want a percentage between 0 and 100")
		}
		c.MemoryThreshold = v
	}
	if c.HSMCheck, err = lc.Bool("proxy", "hsm-health-check-enabled", false); err != nil {
		return c, err
	}
	if c.Settings, err = settings.LoadLbagent(c.XRoadDir); err != nil {
		return c, err
	}
	c.Role = xroad.RoleOf(c.Settings)
	if c.ServerConf, err = xroad.ReadDBProperties(c.XRoadDir, "serverconf"); err != nil {
		return c, err
	}
	c.Redactor = &redact.Redactor{}
	c.Redactor.Add(c.ServerConf.Password)
	s := c.Settings
	if c.Timeout, err = s.Duration(Section, "check-timeout", check.DefaultTimeout); err != nil {
		return c, err
	}
	if c.PassTTL, err = s.Duration(Section, "success-ttl", check.DefaultPassTTL); err != nil {
		return c, err
	}
	if c.FailTTL, err = s.Duration(Section, "failure-ttl", check.DefaultFailTTL); err != nil {
		return c, err
	}
	if c.TCPChecks, err = parseTCPChecks(s); err != nil {
		return c, err
	}
	if c.MaxProcs, err = s.Int(Section, "max-procs", 1); err != nil {
		return c, err
	}
	if err := loadPublicPorts(&c, s); err != nil {
		return c, err
	}
	c.Redactor.Add(c.StatusToken)
	c.MaintenanceStateFile = s.String(Section, "maintenance-state-file", "")
	if f.MaintenanceStateFile != "" {
		c.MaintenanceStateFile = f.MaintenanceStateFile
	}
	return c, nil
}

// loadPublicPorts reads the limits of the ports that face the balancers' network.
func loadPublicPorts(c *Config, s *settings.Settings) error {
	// Ranges are checked when the files are read (settings.LbagentSchema).
	var err error
	if c.MaxConns, err = s.Int(Section, "max-connections", 0); err != nil {
		return err
	}
	if c.MaxConnsPerIP, err = s.Int(Section, "max-connections-per-ip", 0); err != nil {
		return err
	}
	if c.RatePerIP, err = s.Int(Section, "max-rate-per-ip", 0); err != nil {
		return err
	}
	if s.String(Section, "max-rate-per-ip", "") == "0" {
		c.RatePerIP = -1
	}
	if c.ReadTimeout, err = s.Duration(Section, "read-timeout", healthport.DefaultReadTimeout); err != nil {
		return err
	}
	if c.IdleTimeout, err = s.Duration(Section, "idle-timeout", healthport.DefaultIdleTimeout); err != nil {
		return err
	}
	c.StatusToken = s.String(Section, "status-token", "")
	c.Balancers, err = agentcheck.ParseBalancers(s)
	return err
}

// Limits are the connection caps of the public ports.
func (c Config) Limits() connlimit.Limits {
	return connlimit.Limits{Max: c.MaxConns, PerIP: c.MaxConnsPerIP, RatePerIP: c.RatePerIP}
}

// parseTCPChecks reads [lbagent] tcp-checks = name=host:port, name=host:port.
func parseTCPChecks(s *settings.Settings) ([]TCPCheck, error) {
	v := s.String(Section, "tcp-checks", "")
	if v == "" {
		return nil, nil
	}
	var out []TCPCheck
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
		if _, _, err := net.SplitHostPort(addr); !ok || name == "" || err != nil {
			return nil, s.Error(Section, "tcp-checks", "item %q: want name=host:port", item)
		}
		out = append(out, TCPCheck{Name: name, Addr: addr})
	}
	return out, nil
}
