package agentcheck

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/settings"
)

// Section is the settings section in lbagent.ini / node.ini.
const Section = "agent-check"

// DefaultPort is the agent-check port of the example HAProxy configuration.
const DefaultPort = 5589

// StateDir is lbagent's state directory (systemd's StateDirectory=lbagent).
const StateDir = "/var/lib/lbagent"

// stateDir is StateDir; tests point it at a temporary directory.
var stateDir = StateDir

// DefaultStateFile is dir/agentcheck.state when dir exists and this process may write
// into it, else "" (memory only).
func DefaultStateFile(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || unix.Access(dir, unix.W_OK|unix.X_OK) != nil {
		return ""
	}
	return filepath.Join(dir, "agentcheck.state")
}

// Config is the agent-check port's configuration.
type Config struct {
	Listen          string        // host:port; "" = off
	MaintenanceWord string        // "drain" (default) or "maint"
	Weight          int           // static weight percent sent with "up" (1-100); 0 = none
	ReadyFor        time.Duration // how long a peer told drain stays owed "ready" after our maintenance
	StateFile       string        // our own drain, its owed peers and push's drain over restarts (State); "" = memory only
	Dynamic         DynamicConfig // Source "" = off
	// Balancers, when not empty, are the only peers that are told drain/maint as an
	// announcement and given "ready" (on this port and on /lb); they also get the reserved
	// connection slots of the public ports. Empty: every peer counts as a balancer.
	Balancers []netip.Prefix
}

// IsBalancer reports whether ip is one of the balancers (always true when none are listed).
func (c Config) IsBalancer(ip netip.Addr) bool {
	if len(c.Balancers) == 0 {
		return true
	}
	return InPrefixes(c.Balancers, ip)
}

// InPrefixes reports whether ip is in one of ps.
func InPrefixes(ps []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseBalancers reads [agent-check] balancers = ADDR|PREFIX, ... (e.g. 10.0.0.5, 10.0.1.0/24).
func ParseBalancers(s *settings.Settings) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s.String(Section, "balancers", ""), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if ip, err := netip.ParseAddr(item); err == nil {
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, s.Error(Section, "balancers", "%q: want an IP address or a prefix such as 10.0.1.0/24", item)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// LoadConfig reads the [agent-check] section:
//
//	listen           = host:port | off   (default: the health interface, port 5589; off when the
//	                                      health check port is 0, as X-Road's default;
//	                                      /lb on the health port answers the line either way)
//	maintenance-word = drain | maint     (default drain)
//	weight           = 1-100[%]          (default: none)
//	ready-for        = 1m                (a peer told drain is owed "ready" this long)
//	state-file       = path | off        (default: /var/lib/lbagent/agentcheck.state when
//	                                      /var/lib/lbagent exists and is writable, else none)
//	dynamic-weight   = off | connections | load
//	dynamic-port     = 5500              (connections: the local port whose sessions count)
//	dynamic-low      = 100               (at or below: full weight; load: per CPU, e.g. 0.5)
//	dynamic-high     = 1000              (at or above: dynamic-min)
//	dynamic-min      = 10                (percent)
//	dynamic-step     = 10                (percent; smaller moves are not published: hysteresis)
//	dynamic-interval = 2s
//	balancers        = 10.0.0.5, 10.0.1.0/24 (default: any peer; see Config.Balancers)
//
// Errors name the file, section and key.
func LoadConfig(s *settings.Settings, health xroad.HealthCheck) (Config, error) {
	c := Config{MaintenanceWord: "drain", ReadyFor: DefaultReadyFor}
	iface := health.Interface
	if iface == "" {
		iface = "0.0.0.0"
	}
	c.Listen = net.JoinHostPort(iface, strconv.Itoa(DefaultPort))
	if health.Port == 0 {
		c.Listen = "" // no health check port ([proxy] health-check-port = 0): no agent-check either, unless asked
	}
	if s.Has(Section, "listen") {
		v := s.String(Section, "listen", "")
		switch strings.ToLower(v) {
		case "", "off", "false", "no":
			c.Listen = ""
		default:
			host, port, err := net.SplitHostPort(v)
			n, perr := strconv.Atoi(port)
			if err != nil || perr != nil || n < 1 || n > 65535 || (host != "" && net.ParseIP(host) == nil) {
				return c, s.Error(Section, "listen", "want ip:port (e.g. 0.0.0.0:5589) or off")
			}
			c.Listen = v
		}
	}
	switch w := strings.ToLower(s.String(Section, "maintenance-word", "drain")); w {
	case "drain", "maint":
		c.MaintenanceWord = w
	default:
		return c, s.Error(Section, "maintenance-word", "want drain or maint")
	}
	if v := strings.TrimSuffix(s.String(Section, "weight", ""), "%"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return c, s.Error(Section, "weight", "want a percentage from 1 to 100")
		}
		c.Weight = n
	}
	var err error
	if c.ReadyFor, err = s.Duration(Section, "ready-for", DefaultReadyFor); err != nil {
		return c, err
	}
	c.StateFile = DefaultStateFile(stateDir)
	if s.Has(Section, "state-file") {
		switch v := s.String(Section, "state-file", ""); strings.ToLower(v) {
		case "", "off", "false", "no":
			c.StateFile = ""
		default:
			c.StateFile = v
		}
	}
	if c.Dynamic, err = loadDynamic(s); err != nil {
		return c, err
	}
	if c.Balancers, err = ParseBalancers(s); err != nil {
		return c, err
	}
	return c, nil
}

func loadDynamic(s *settings.Settings) (DynamicConfig, error) {
	var d DynamicConfig
	switch src := strings.ToLower(s.String(Section, "dynamic-weight", "off")); src {
	case "off", "", "false", "no":
		return d, nil
	case SourceConnections, SourceLoad:
		d.Source = src
	default:
		return d, s.Error(Section, "dynamic-weight", "want off, connections or load")
	}
	d = d.withDefaults()
	num := func(key string, def float64) (float64, error) {
		v := s.String(Section, key, "")
		if v == "" {
			return def, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return 0, s.Error(Section, key, "want a non-negative number")
		}
		return f, nil
	}
	var err error
	var port, min, step float64
	if port, err = num("dynamic-port", float64(d.Port)); err != nil {
		return d, err
	}
	if d.Low, err = num("dynamic-low", d.Low); err != nil {
		return d, err
	}
	if d.High, err = num("dynamic-high", d.High); err != nil {
		return d, err
	}
	if min, err = num("dynamic-min", float64(d.Min)); err != nil {
		return d, err
	}
	if step, err = num("dynamic-step", float64(d.Step)); err != nil {
		return d, err
	}
	d.Port, d.Min, d.Step = int(port), int(min), int(step)
	if d.Interval, err = s.Duration(Section, "dynamic-interval", d.Interval); err != nil {
		return d, err
	}
	if err := d.validate(); err != nil {
		return d, s.Error(Section, "dynamic-weight", "%v", err)
	}
	return d, nil
}
