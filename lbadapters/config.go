// Package lbadapters drives a cluster's load balancer for the operator: the cluster config
// file, the small interface a balancer adapter implements, and the status, drain and enable
// orchestration built on it.
package lbadapters

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xroad-lb/lbkit/settings"
)

// DefaultConfigPath is where lbadapter looks for the cluster config without --config.
const DefaultConfigPath = "/etc/lbadapter/cluster.ini"

// Defaults for a node's agent ports (the guide's health check port, lbagent's agent-check port).
const (
	DefaultHealthPort  = 5588
	DefaultAgentPort   = 5589
	DefaultCallTimeout = 5 * time.Second
)

// Roles a node may have.
const (
	RolePrimary    = "primary"
	RoleSecondary  = "secondary"
	RoleStandalone = "standalone"
)

// ErrUnknownNode is returned by Config.Node for a name that the config does not list.
var ErrUnknownNode = errors.New("unknown node")

// Config is a cluster: its nodes and the balancers in front of them.
type Config struct {
	Path      string           // the file it was read from, for messages
	Balancers []BalancerConfig // in file order, at least one
	Nodes     []Node           // in file order
	SSH       SSHConfig        // [ssh]: how lbadapter upgrade reaches the nodes
}

// Defaults of the [ssh] section.
const (
	DefaultSSHUser    = "root"
	DefaultSSHPort    = 22
	DefaultSSHLBAgent = "lbagent"
	// DefaultDBLBAgent runs the db steps as the guide's "sudo -u postgres psql" does.
	DefaultDBLBAgent = "sudo -u postgres lbagent"
)

// SSHConfig is the [ssh] section: how `lbadapter upgrade` logs in to the nodes. Host keys are
// always checked against KnownHosts; the key comes from ssh-agent (SSH_AUTH_SOCK) and/or
// Identity.
type SSHConfig struct {
	User       string // default root
	Identity   string // private key file; "" = ssh-agent only
	KnownHosts string // default ~/.ssh/known_hosts
	Port       int    // default 22
	// LBAgent is the command that runs lbagent on a node (default "lbagent"); a node's own
	// lbagent key overrides it.
	LBAgent string
	// DBLBAgent runs lbagent's db steps (a superuser of the serverconf instance), default
	// "sudo -u postgres lbagent"; a node's db-lbagent key overrides it.
	DBLBAgent string
}

// Balancer types.
const (
	TypeHAProxy = "haproxy"
	TypeAWS     = "aws"
	TypeNginx   = "nginx"
)

// LegacyBalancerName is the name of a balancer from an unnamed [balancer] section.
const LegacyBalancerName = "balancer"

// DefaultNginxCallTimeout bounds one change of an nginx balancer: write, nginx -t, reload.
const DefaultNginxCallTimeout = 10 * time.Second

// DefaultAWSCallTimeout bounds one ELBv2 call including the SDK's retries of throttled calls.
const DefaultAWSCallTimeout = 30 * time.Second

// BalancerConfig is one [balancer "NAME"] section (or the unnamed [balancer]). Type selects
// the adapter; the other fields are the settings of the adapter of that type.
type BalancerConfig struct {
	Name string // from the section; LegacyBalancerName for [balancer]
	Type string // TypeHAProxy or TypeAWS

	// HAProxy: the runtime API ("/run/haproxy/admin.sock", "unix:/path", "host:port",
	// "ipv4@host:port") and the backend that holds the nodes' servers.
	RuntimeAPI string
	Backend    string

	// AWS: the ELBv2 target group that holds the nodes, and optional overrides of the SDK's
	// usual sources (environment, shared config, instance role).
	TargetGroupARN string
	Region         string
	Profile        string
	Endpoint       string

	// nginx: the main config (for nginx -t -c and its pid directive), the servers file that
	// lbadapter keeps (included in the user's upstream), the nodes' port in that upstream, and
	// an optional pid file that overrides the config's pid directive.
	NginxConf   string
	ServersFile string
	Port        int
	PIDFile     string

	// CallTimeout bounds every single call to the balancer (not the wait for a drain).
	CallTimeout time.Duration
}

// Node is one [node "name"] section.
type Node struct {
	Name       string `json:"name"`
	Address    string `json:"address"`
	Role       string `json:"role"`
	HealthPort int    `json:"health_port"`
	AgentPort  int    `json:"agent_port"`
	// Server is the balancer's name for the node (HAProxy server name); default Name.
	Server string `json:"server"`
	// TargetID is the node's target in an ELBv2 target group (an IP address or an instance
	// ID); default Address. TargetPort is its port there; 0 = the target group's port.
	TargetID   string `json:"target_id"`
	TargetPort int    `json:"target_port,omitempty"`
	// SSH is where `lbadapter upgrade` logs in, "user@host:port" ([ssh] fills what is
	// missing; the host defaults to Address). LBAgent overrides [ssh] lbagent for this node.
	SSHUser   string `json:"-"`
	SSHHost   string `json:"-"`
	SSHPort   int    `json:"-"`
	LBAgent   string `json:"-"`
	DBLBAgent string `json:"-"`
}

// DBLBAgent is the command that runs lbagent's db steps on the node.
func (c *Config) DBLBAgent(n Node) string {
	if n.DBLBAgent != "" {
		return n.DBLBAgent
	}
	return c.SSH.DBLBAgent
}

// SSHAddr is the node's SSH login: user, host:port and the lbagent command, with the [ssh]
// section's defaults applied.
func (c *Config) SSHAddr(n Node) (user, addr, lbagent string) {
	user, host, port, lbagent := n.SSHUser, n.SSHHost, n.SSHPort, n.LBAgent
	if user == "" {
		user = c.SSH.User
	}
	if host == "" {
		host = n.Address
	}
	if port == 0 {
		port = c.SSH.Port
	}
	if lbagent == "" {
		lbagent = c.SSH.LBAgent
	}
	return user, net.JoinHostPort(host, strconv.Itoa(port)), lbagent
}

// Balancer returns the balancer called name, or false.
func (c *Config) Balancer(name string) (BalancerConfig, bool) {
	for _, b := range c.Balancers {
		if b.Name == name {
			return b, true
		}
	}
	return BalancerConfig{}, false
}

// Node returns the node called name, or an error wrapping ErrUnknownNode.
func (c *Config) Node(name string) (Node, error) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.Name
	}
	return Node{}, fmt.Errorf("%w %q (%s lists: %s)", ErrUnknownNode, name, c.Path, strings.Join(names, ", "))
}

// Load reads and validates the cluster config file at path (settings.ParseCluster: our rules,
// docs/settings.md). Errors name the file and, for a single line, the line.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster config: %w", err)
	}
	return ParseFile(path, b)
}

// Parse reads and validates a cluster config; errors name it "cluster config".
func Parse(data []byte) (*Config, error) { return ParseFile("cluster config", data) }

// ParseFile reads and validates a cluster config; path names it in errors.
func ParseFile(path string, data []byte) (*Config, error) {
	f, err := settings.ParseCluster(path, data)
	if err != nil {
		return nil, err
	}
	c, err := build(f)
	if err != nil {
		var se *settings.Error
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, &settings.Error{Path: path, Msg: err.Error()}
	}
	c.Path = path
	return c, nil
}

// at places an error about section s: at the line of the key it is about (a *keyError),
// else at the section's header line.
func at(f *settings.File, s *settings.Section, err error) error {
	line := s.Line
	var ke *keyError
	if errors.As(err, &ke) {
		for _, e := range s.Entries {
			if e.Key == ke.key {
				line = e.Line
			}
		}
	}
	return &settings.Error{Path: f.Path, Line: line, Msg: err.Error()}
}

// keyError is an error about one key's value; at places it at that key's line.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// onKey marks err as being about key (see at).
func onKey(key string, err error) error { return &keyError{key: key, err: err} }

// build makes the cluster from a file that passed settings.ClusterSchema.
func build(f *settings.File) (*Config, error) {
	c := &Config{Path: f.Path, SSH: SSHConfig{User: DefaultSSHUser,
		Port: DefaultSSHPort, LBAgent: DefaultSSHLBAgent, DBLBAgent: DefaultDBLBAgent}}
	sshSeen := false
	var lines []*settings.Section // the nodes' sections
	for _, s := range f.Sections {
		name := s.Name
		switch {
		case name == "balancer" || sectionOf(name, "balancer"):
			b, err := parseBalancer(s)
			if err != nil {
				return nil, at(f, s, err)
			}
			if _, dup := c.Balancer(b.Name); dup {
				return nil, at(f, s, fmt.Errorf("[%s]: balancer %q listed twice", name, b.Name))
			}
			c.Balancers = append(c.Balancers, b)
		case name == "ssh":
			if sshSeen {
				return nil, at(f, s, errors.New("[ssh]: section listed twice"))
			}
			sshSeen = true
			if err := parseSSH(s, &c.SSH); err != nil {
				return nil, at(f, s, err)
			}
		case sectionOf(name, "node"):
			n, err := parseNode(s)
			if err != nil {
				return nil, at(f, s, err)
			}
			c.Nodes = append(c.Nodes, n)
			lines = append(lines, s)
		}
	}
	if len(c.Balancers) == 0 {
		return nil, errors.New(`missing [balancer "NAME"] section`)
	}
	if len(c.Nodes) == 0 {
		return nil, errors.New(`no [node "NAME"] sections`)
	}
	names, servers := map[string]bool{}, map[string]bool{}
	for i, n := range c.Nodes {
		if names[n.Name] {
			return nil, at(f, lines[i], fmt.Errorf("[node %q]: node listed twice", n.Name))
		}
		if servers[n.Server] {
			return nil, at(f, lines[i], onKey("server", fmt.Errorf("[node %q]: server %q used by two nodes", n.Name, n.Server)))
		}
		names[n.Name], servers[n.Server] = true, true
	}
	if slices.ContainsFunc(c.Balancers, func(b BalancerConfig) bool { return b.Type == TypeAWS }) {
		targets := map[string]bool{}
		for i, n := range c.Nodes {
			t := n.TargetID + ":" + strconv.Itoa(n.TargetPort)
			if targets[t] {
				return nil, at(f, lines[i], onKey("target-id", fmt.Errorf("[node %q]: target %s used by two nodes (see target-id, target-port)", n.Name, n.TargetID)))
			}
			targets[t] = true
		}
	}
	return c, nil
}

// sectionOf reports whether a section name is kind followed by a name ("node \"ss1\"").
func sectionOf(section, kind string) bool {
	return strings.HasPrefix(section, kind+" ") || strings.HasPrefix(section, kind+"\t")
}

// sectionName is the NAME of [kind "NAME"] (quoted or not), checked to be a plain name.
func sectionName(s *settings.Section, kind string) (string, error) {
	raw := strings.TrimSpace(s.Name[len(kind):])
	name := raw
	if uq, err := strconv.Unquote(raw); err == nil {
		name = uq
	}
	if name == "" || strings.ContainsAny(name, " \t\"/[]") {
		return "", fmt.Errorf("[%s]: bad %s name %q (letters, digits, '.', '-', '_')", s.Name, kind, name)
	}
	return name, nil
}

// balancerKeys are the keys each balancer type takes, besides type and timeout.
var balancerKeys = map[string][]string{
	TypeHAProxy: {"runtime-api", "backend"},
	TypeAWS:     {"target-group-arn", "region", "profile", "endpoint"},
	TypeNginx:   {"nginx-conf", "servers-file", "port", "pid-file"},
}

func parseBalancer(s *settings.Section) (BalancerConfig, error) {
	b := BalancerConfig{Name: LegacyBalancerName}
	where := "[balancer]"
	if s.Name != "balancer" {
		name, err := sectionName(s, "balancer")
		if err != nil {
			return b, err
		}
		b.Name, where = name, fmt.Sprintf("[balancer %q]", name)
	}
	var seen []string
	for _, k := range s.Entries {
		v := k.Value
		switch k.Key {
		case "type":
			b.Type = strings.ToLower(v)
		case "runtime-api":
			b.RuntimeAPI = v
		case "backend":
			b.Backend = v
		case "target-group-arn":
			b.TargetGroupARN = v
		case "region":
			b.Region = v
		case "profile":
			b.Profile = v
		case "endpoint":
			b.Endpoint = v
		case "nginx-conf":
			b.NginxConf = v
		case "servers-file":
			b.ServersFile = v
		case "pid-file":
			b.PIDFile = v
		case "port":
			p, err := parsePort(v)
			if err != nil {
				return b, onKey("port", fmt.Errorf("%s port = %q: %w", where, v, err))
			}
			b.Port = p
		case "timeout":
			d, err := settings.ParseDuration(v)
			if err != nil || d <= 0 {
				return b, onKey("timeout", fmt.Errorf("%s timeout = %q: want a positive duration like 5s", where, v))
			}
			b.CallTimeout = d
		}
		if k.Key != "type" && k.Key != "timeout" {
			seen = append(seen, k.Key)
		}
	}
	keys, ok := balancerKeys[b.Type]
	switch {
	case b.Type == "":
		return b, fmt.Errorf("%s: missing key type (haproxy, aws or nginx)", where)
	case !ok:
		return b, onKey("type", fmt.Errorf("%s type = %q: unsupported (supported: haproxy, aws, nginx)", where, b.Type))
	}
	for _, k := range seen {
		if !slices.Contains(keys, k) {
			return b, onKey(k, fmt.Errorf("%s: key %q does not apply to type %s (its keys: %s)", where, k, b.Type, strings.Join(keys, ", ")))
		}
	}
	switch b.Type {
	case TypeHAProxy:
		if b.CallTimeout == 0 {
			b.CallTimeout = DefaultCallTimeout
		}
		if b.RuntimeAPI == "" {
			return b, fmt.Errorf("%s: type haproxy needs runtime-api (e.g. /run/haproxy/admin.sock)", where)
		}
		if b.Backend == "" {
			return b, fmt.Errorf("%s: type haproxy needs backend (the backend holding the nodes)", where)
		}
	case TypeNginx:
		if b.CallTimeout == 0 {
			b.CallTimeout = DefaultNginxCallTimeout
		}
		for _, k := range []struct{ key, v, eg string }{{"nginx-conf", b.NginxConf, "/etc/nginx/nginx.conf"},
			{"servers-file", b.ServersFile, "/etc/nginx/lbkit/xroad-5500.servers"}} {
			if k.v == "" {
				return b, fmt.Errorf("%s: type nginx needs %s (e.g. %s)", where, k.key, k.eg)
			}
			if !filepath.IsAbs(k.v) {
				return b, onKey(k.key, fmt.Errorf("%s %s = %q: want an absolute path", where, k.key, k.v))
			}
		}
		if b.PIDFile != "" && !filepath.IsAbs(b.PIDFile) {
			return b, onKey("pid-file", fmt.Errorf("%s pid-file = %q: want an absolute path", where, b.PIDFile))
		}
		if b.Port == 0 {
			return b, fmt.Errorf("%s: type nginx needs port (the nodes' port in the upstream, e.g. 5500)", where)
		}
	case TypeAWS:
		if b.CallTimeout == 0 {
			b.CallTimeout = DefaultAWSCallTimeout
		}
		if b.TargetGroupARN == "" {
			return b, fmt.Errorf("%s: type aws needs target-group-arn (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)", where)
		}
		if _, err := ParseTargetGroupARN(b.TargetGroupARN); err != nil {
			return b, onKey("target-group-arn", fmt.Errorf("%s target-group-arn = %q: %w", where, b.TargetGroupARN, err))
		}
		if b.Endpoint != "" {
			u, err := url.Parse(b.Endpoint)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return b, onKey("endpoint", fmt.Errorf("%s endpoint = %q: want a URL like https://elasticloadbalancing.eu-west-1.amazonaws.com", where, b.Endpoint))
			}
		}
	}
	return b, nil
}

// TargetGroupARN is the parts of an ELBv2 target group ARN,
// arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID.
type TargetGroupARN struct {
	Partition, Region, Account, Name, ID string
}

// ParseTargetGroupARN splits an ELBv2 target group ARN.
func ParseTargetGroupARN(arn string) (TargetGroupARN, error) {
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[2] != "elasticloadbalancing" || f[3] == "" {
		return TargetGroupARN{}, errors.New("want arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID")
	}
	res := strings.Split(f[5], "/")
	if len(res) != 3 || res[0] != "targetgroup" || res[1] == "" || res[2] == "" {
		return TargetGroupARN{}, errors.New("not a target group ARN (want …:targetgroup/NAME/ID)")
	}
	return TargetGroupARN{Partition: f[1], Region: f[3], Account: f[4], Name: res[1], ID: res[2]}, nil
}

func parseNode(s *settings.Section) (Node, error) {
	name, err := sectionName(s, "node")
	if err != nil {
		return Node{}, err
	}
	n := Node{Name: name, Server: name, HealthPort: DefaultHealthPort, AgentPort: DefaultAgentPort}
	where := fmt.Sprintf("[node %q]", name)
	for _, k := range s.Entries {
		v := k.Value
		var err error
		switch k.Key {
		case "address":
			n.Address = v
		case "role":
			n.Role = strings.ToLower(v)
		case "server":
			n.Server = v
		case "health-port":
			n.HealthPort, err = parsePort(v)
		case "agent-port":
			n.AgentPort, err = parsePort(v)
		case "target-id":
			n.TargetID = v
		case "target-port":
			n.TargetPort, err = parsePort(v)
		case "ssh":
			n.SSHUser, n.SSHHost, n.SSHPort, err = parseSSHTarget(v)
		case "lbagent", "db-lbagent":
			if v == "" {
				err = errors.New("want the command that runs lbagent on the node")
			}
			if k.Key == "lbagent" {
				n.LBAgent = v
			} else {
				n.DBLBAgent = v
			}
		}
		if err != nil {
			return n, onKey(k.Key, fmt.Errorf("%s %s = %q: %w", where, k.Key, v, err))
		}
	}
	if n.Address == "" {
		return n, fmt.Errorf("%s: missing key address", where)
	}
	if strings.ContainsAny(n.Address, " /:") && net.ParseIP(n.Address) == nil {
		return n, onKey("address", fmt.Errorf("%s address = %q: want a host name or IP address without port", where, n.Address))
	}
	if n.TargetID == "" {
		n.TargetID = n.Address
	}
	switch n.Role {
	case RolePrimary, RoleSecondary, RoleStandalone:
	case "":
		return n, fmt.Errorf("%s: missing key role (primary, secondary or standalone)", where)
	default:
		return n, onKey("role", fmt.Errorf("%s role = %q: want primary, secondary or standalone", where, n.Role))
	}
	if n.Server == "" || strings.ContainsAny(n.Server, " /") {
		return n, onKey("server", fmt.Errorf("%s server = %q: want a HAProxy server name", where, n.Server))
	}
	return n, nil
}

func parsePort(v string) (int, error) {
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, errors.New("want a port number 1-65535")
	}
	return p, nil
}

// parseSSH reads the [ssh] section into c (which holds the defaults).
func parseSSH(s *settings.Section, c *SSHConfig) error {
	for _, k := range s.Entries {
		v := k.Value
		var err error
		switch k.Key {
		case "user":
			if v == "" || strings.ContainsAny(v, "@: \t") {
				err = errors.New("want a login name")
			}
			c.User = v
		case "identity":
			if !filepath.IsAbs(v) {
				err = errors.New("want an absolute path to a private key file")
			}
			c.Identity = v
		case "known-hosts":
			if !filepath.IsAbs(v) {
				err = errors.New("want an absolute path to a known_hosts file")
			}
			c.KnownHosts = v
		case "port":
			c.Port, err = parsePort(v)
		case "lbagent", "db-lbagent":
			if v == "" {
				err = errors.New("want the command that runs lbagent on the nodes")
			}
			if k.Key == "lbagent" {
				c.LBAgent = v
			} else {
				c.DBLBAgent = v
			}
		}
		if err != nil {
			return onKey(k.Key, fmt.Errorf("[ssh] %s = %q: %w", k.Key, v, err))
		}
	}
	return nil
}

// parseSSHTarget splits a node's ssh = [user@]host[:port].
func parseSSHTarget(v string) (user, host string, port int, err error) {
	bad := errors.New("want [user@]host[:port], e.g. root@ss1.example.org:22")
	if at := strings.LastIndex(v, "@"); at >= 0 {
		user, v = v[:at], v[at+1:]
		if user == "" || strings.ContainsAny(user, "@: \t") {
			return "", "", 0, bad
		}
	}
	host = v
	if h, p, splitErr := net.SplitHostPort(v); splitErr == nil {
		if port, err = parsePort(p); err != nil {
			return "", "", 0, bad
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, " /@[]\t") || strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return "", "", 0, bad
	}
	return user, host, port, nil
}
