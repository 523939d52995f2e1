// Package lbadapters drives a cluster's load balancer for the operator: the cluster config
// file, the small interface a balancer adapter implements, and the status, drain and enable
// orchestration built on it.
package lbadapters

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
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

// Config is a cluster: its nodes and the balancer in front of them.
type Config struct {
	Path     string // the file it was read from, for messages
	Balancer BalancerConfig
	Nodes    []Node // in file order
}

// BalancerConfig is the [balancer] section. Type selects the adapter; the other fields are
// the settings of the adapter of that type.
type BalancerConfig struct {
	Type string // "haproxy" (aws and nginx come later)

	// HAProxy: the runtime API ("/run/haproxy/admin.sock", "unix:/path", "host:port",
	// "ipv4@host:port") and the backend that holds the nodes' servers.
	RuntimeAPI string
	Backend    string

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

// Load reads and validates the cluster config file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// Parse reads and validates a cluster config.
func Parse(data []byte) (*Config, error) {
	f, err := ini.LoadSources(ini.LoadOptions{AllowNonUniqueSections: true}, data)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	c := &Config{Path: "cluster config"}
	seenBalancer := false
	for _, s := range f.Sections() {
		name := s.Name()
		switch {
		case name == ini.DefaultSection:
			if len(s.Keys()) > 0 {
				return nil, fmt.Errorf("key %q outside a section", s.Keys()[0].Name())
			}
		case name == "balancer":
			seenBalancer = true
			if c.Balancer, err = parseBalancer(s); err != nil {
				return nil, err
			}
		case strings.HasPrefix(name, "node ") || strings.HasPrefix(name, "node\t"):
			n, err := parseNode(s)
			if err != nil {
				return nil, err
			}
			c.Nodes = append(c.Nodes, n)
		default:
			return nil, fmt.Errorf("[%s]: unknown section (want [balancer] or [node \"NAME\"])", name)
		}
	}
	if !seenBalancer {
		return nil, errors.New("missing [balancer] section")
	}
	if len(c.Nodes) == 0 {
		return nil, errors.New(`no [node "NAME"] sections`)
	}
	names, servers := map[string]bool{}, map[string]bool{}
	for _, n := range c.Nodes {
		if names[n.Name] {
			return nil, fmt.Errorf("[node %q]: node listed twice", n.Name)
		}
		if servers[n.Server] {
			return nil, fmt.Errorf("[node %q]: server %q used by two nodes", n.Name, n.Server)
		}
		names[n.Name], servers[n.Server] = true, true
	}
	return c, nil
}

func parseBalancer(s *ini.Section) (BalancerConfig, error) {
	b := BalancerConfig{CallTimeout: DefaultCallTimeout}
	for _, k := range s.Keys() {
		v := strings.TrimSpace(k.Value())
		switch k.Name() {
		case "type":
			b.Type = strings.ToLower(v)
		case "runtime-api":
			b.RuntimeAPI = v
		case "backend":
			b.Backend = v
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return b, fmt.Errorf("[balancer] timeout = %q: want a positive duration like 5s", v)
			}
			b.CallTimeout = d
		default:
			return b, fmt.Errorf("[balancer]: unknown key %q", k.Name())
		}
	}
	switch b.Type {
	case "":
		return b, errors.New("[balancer]: missing key type (haproxy)")
	case "haproxy":
		if b.RuntimeAPI == "" {
			return b, errors.New("[balancer]: type haproxy needs runtime-api (e.g. /run/haproxy/admin.sock)")
		}
		if b.Backend == "" {
			return b, errors.New("[balancer]: type haproxy needs backend (the backend holding the nodes)")
		}
	default:
		return b, fmt.Errorf("[balancer] type = %q: unsupported (supported: haproxy)", b.Type)
	}
	return b, nil
}

func parseNode(s *ini.Section) (Node, error) {
	raw := strings.TrimSpace(s.Name()[len("node "):])
	name := raw
	if uq, err := strconv.Unquote(raw); err == nil {
		name = uq
	}
	if name == "" || strings.ContainsAny(name, " \t\"/") {
		return Node{}, fmt.Errorf("[%s]: bad node name %q (letters, digits, '.', '-', '_')", s.Name(), name)
	}
	n := Node{Name: name, Server: name, HealthPort: DefaultHealthPort, AgentPort: DefaultAgentPort}
	where := fmt.Sprintf("[node %q]", name)
	for _, k := range s.Keys() {
		v := strings.TrimSpace(k.Value())
		var err error
		switch k.Name() {
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
		default:
			return n, fmt.Errorf("%s: unknown key %q", where, k.Name())
		}
		if err != nil {
			return n, fmt.Errorf("%s %s = %q: %w", where, k.Name(), v, err)
		}
	}
	if n.Address == "" {
		return n, fmt.Errorf("%s: missing key address", where)
	}
	if strings.ContainsAny(n.Address, " /:") && net.ParseIP(n.Address) == nil {
		return n, fmt.Errorf("%s address = %q: want a host name or IP address without port", where, n.Address)
	}
	switch n.Role {
	case RolePrimary, RoleSecondary, RoleStandalone:
	case "":
		return n, fmt.Errorf("%s: missing key role (primary, secondary or standalone)", where)
	default:
		return n, fmt.Errorf("%s role = %q: want primary, secondary or standalone", where, n.Role)
	}
	if n.Server == "" || strings.ContainsAny(n.Server, " /") {
		return n, fmt.Errorf("%s server = %q: want a HAProxy server name", where, n.Server)
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
