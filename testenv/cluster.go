package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv/elbv2"
)

// ClusterOptions shape a Cluster. The zero value is three nodes with short HAProxy intervals
// (inter and agent-inter 200ms) and no push.
type ClusterOptions struct {
	LBAgent string // the lbagent binary (BuildLBAgent); required
	Nodes   int    // default 3 (127.0.0.2, .3, .4, ...)
	// Check is the HAProxy "check" options of every server, default
	// "inter 200ms fall 3 rise 2"; AgentInter is agent-inter, default 200ms.
	Check      string
	AgentInter string
	// NoAgentCheck leaves agent-check off the server lines (HTTP check only).
	NoAgentCheck bool
	// Push makes every lbagent push verdict changes to HAProxy's runtime API.
	Push bool
	// LBAgentINI is extra text for every node's conf.d/lbagent.ini (e.g. "[agent-check]\n...").
	// Its [lbagent] section already sets success-ttl = 200ms and failure-ttl = 1s.
	LBAgentINI string
	Dir        string // default a new directory under os.TempDir()

	// ELBv2 also puts every node in a target group of a local ELBv2 endpoint (package
	// elbv2), the cluster config's [balancer "nlb"]: traffic port the node's message port
	// (target-port), health check HTTP on the health port, which is then the same on every
	// node. The targets are registered and healthy when StartCluster returns.
	ELBv2 bool
	// ELBv2Check is the group's health check; default HTTP, path /, matcher 200, interval
	// 200ms, thresholds 2 and 2 (the port is always the nodes' health port).
	ELBv2Check elbv2.HealthCheck
	// ELBv2DelaySeconds is the group's deregistration delay; default 1.
	ELBv2DelaySeconds int

	// SharedHealthPort gives every node the same health port (as ELBv2 does).
	SharedHealthPort bool
	// SharedAgentPort gives every node the same agent-check port (as one "default-server
	// agent-port" line of an HAProxy backend does).
	SharedAgentPort bool

	// Nginx also puts every node in a stream upstream of a real nginx (worker_processes 2,
	// worker_shutdown_timeout 5m), the cluster config's [balancer "edge"] of type nginx: the
	// nodes' message ports are then one port on every node, listed in the servers file that
	// the upstream includes.
	Nginx bool

	// DB is the PostgreSQL server of the nodes' serverconf databases; default a new one,
	// closed with the cluster (a given one is left running).
	DB *Postgres
}

// Cluster is an X-Road cluster on loopback: per node a message-port stand-in, X-Road node
// files and a running lbagent; one PostgreSQL for the serverconf databases; HAProxy in front
// with a TCP frontend on 127.0.0.1 and the runtime API; and a cluster.ini for lbadapter.
type Cluster struct {
	Dir        string
	Nodes      []*ClusterNode
	DB         *Postgres
	HAProxy    *HAProxy
	Backend    string // "xroad"
	Frontend   string // host:port of the message frontend
	ConfigPath string // lbadapter's cluster.ini

	ELBv2          *elbv2.Server // with ClusterOptions.ELBv2
	TargetGroupARN string

	Nginx         *Nginx // with ClusterOptions.Nginx
	NginxFrontend string // host:port of nginx's stream server
	ServersFile   string // the upstream's servers file
	MsgPort       int    // the nodes' common message port (with Nginx)

	ownDB bool
}

// ClusterNode is one node of a Cluster.
type ClusterNode struct {
	Name       string // ss1, ss2, ... (also the HAProxy server name)
	Role       string // primary or secondary
	IP         string // 127.0.0.N
	Msg        *MsgServer
	XRoad      *Node
	HealthPort int
	AgentPort  int
	AdminAddr  string // the agent's admin port (maintenance mode)

	bin, dir string
	proc     *process
}

// BuildLBAgent builds ./cmd/lbagent of this module into dir and returns the binary's path.
func BuildLBAgent(ctx context.Context, dir string) (string, error) {
	return BuildCommand(ctx, dir, "lbagent")
}

// BuildCommand builds ./cmd/NAME of this module (lbagent, lbadapter) into dir and returns
// the binary's path.
func BuildCommand(ctx context.Context, dir, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", fmt.Errorf("testenv: build %s: not inside the module (%v)", name, err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: go build ./cmd/%s: %w\n%s", name, err, b)
	}
	return bin, nil
}

// NewCluster starts a cluster for a test and stops it at cleanup. It builds lbagent when
// opts.LBAgent is empty.
func NewCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	Require(t, "haproxy")
	RequirePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if opts.LBAgent == "" {
		bin, err := BuildLBAgent(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		opts.LBAgent = bin
	}
	c, err := StartCluster(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// StartCluster starts everything and returns once every agent answers /status and HAProxy
// shows every server UP.
func StartCluster(ctx context.Context, opts ClusterOptions) (_ *Cluster, err error) {
	if opts.LBAgent == "" {
		return nil, errors.New("testenv: ClusterOptions.LBAgent is required (BuildLBAgent)")
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.Nodes > 200 {
		return nil, errors.New("testenv: at most 200 nodes")
	}
	if opts.Check == "" {
		opts.Check = "inter 200ms fall 3 rise 2"
	}
	if opts.AgentInter == "" {
		opts.AgentInter = "200ms"
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "testenv-cluster-"); err != nil {
			return nil, err
		}
	}
	c := &Cluster{Dir: dir, Backend: "xroad", ownDB: opts.DB == nil}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	if c.DB = opts.DB; c.DB == nil {
		if c.DB, err = StartPostgres(ctx, PostgresOptions{}); err != nil {
			return nil, err
		}
	}
	be := HABackend{Name: c.Backend, Options: []string{"option httpchk", "balance roundrobin"}}
	sharedHealthPort := 0
	ips := make([]string, opts.Nodes)
	for i := range ips {
		ips[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	if opts.ELBv2 || opts.SharedHealthPort {
		if sharedHealthPort, err = FreePortOn(ips...); err != nil {
			return nil, err
		}
	}
	sharedAgentPort := 0
	if opts.SharedAgentPort {
		if sharedAgentPort, err = FreePortOn(ips...); err != nil {
			return nil, err
		}
	}
	if opts.Nginx {
		if c.MsgPort, err = FreePortOn(ips...); err != nil {
			return nil, err
		}
	}
	for i := 0; i < opts.Nodes; i++ {
		n := &ClusterNode{Name: fmt.Sprintf("ss%d", i+1), Role: "secondary", IP: fmt.Sprintf("127.0.0.%d", i+2),
			bin: opts.LBAgent, dir: filepath.Join(dir, fmt.Sprintf("ss%d", i+1))}
		if i == 0 {
			n.Role = "primary"
		}
		c.Nodes = append(c.Nodes, n)
		if n.Msg, err = StartMsgServer(net.JoinHostPort(n.IP, strconv.Itoa(c.MsgPort))); err != nil {
			return nil, err
		}
		if n.HealthPort = sharedHealthPort; n.HealthPort == 0 {
			if n.HealthPort, err = FreePort(n.IP); err != nil {
				return nil, err
			}
		}
		if n.AgentPort = sharedAgentPort; n.AgentPort == 0 {
			if n.AgentPort, err = FreePort(n.IP); err != nil {
				return nil, err
			}
		}
		admin, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		n.AdminAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(admin))
		srv := fmt.Sprintf("check port %d %s", n.HealthPort, opts.Check)
		if !opts.NoAgentCheck {
			srv += fmt.Sprintf(" agent-check agent-port %d agent-inter %s", n.AgentPort, opts.AgentInter)
		}
		be.Servers = append(be.Servers, HAServer{Name: n.Name, Addr: n.Msg.Addr, Options: srv + " on-marked-down shutdown-sessions"})
	}
	if c.HAProxy, err = StartHAProxy(ctx, HAProxyOptions{Dir: filepath.Join(dir, "haproxy"),
		Frontends: []HAFrontend{{Name: "messages", Bind: "127.0.0.1:0", Backend: c.Backend}},
		Backends:  []HABackend{be}}); err != nil {
		return nil, err
	}
	c.Frontend = c.HAProxy.FrontendAddr("messages")
	if opts.Nginx {
		if err = c.startNginx(ctx); err != nil {
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		// The state file of the agent-check and push, as /var/lib/lbagent/agentcheck.state on
		// a real node: kept across StopAgent and StartAgent.
		ini := fmt.Sprintf("[lbagent]\nsuccess-ttl = 200ms\nfailure-ttl = 1s\n\n[agent-check]\nlisten = %s\nstate-file = %s\n",
			net.JoinHostPort(n.IP, strconv.Itoa(n.AgentPort)), n.StateFile())
		if opts.Push {
			ini += fmt.Sprintf("\n[push]\nhaproxy-socket = %s\nbackend = %s\nserver = %s\n", c.HAProxy.AdminSocket, c.Backend, n.Name)
		}
		ini += "\n" + opts.LBAgentINI
		role := "slave"
		if n.Role == "primary" {
			role = "master"
		}
		if n.XRoad, err = WriteNode(filepath.Join(n.dir, "node"), NodeOptions{Role: role, HealthInterface: n.IP,
			HealthPort: n.HealthPort, DB: c.DB, LBAgentINI: ini}); err != nil {
			return nil, err
		}
		if err = n.StartAgent(ctx); err != nil {
			return nil, err
		}
	}
	if opts.ELBv2 {
		if err = c.startELBv2(ctx, opts, sharedHealthPort); err != nil {
			return nil, err
		}
	}
	if err = c.writeConfig(); err != nil {
		return nil, err
	}
	for _, n := range c.Nodes {
		if err = c.WaitServer(ctx, n.Name, func(status string) bool { return status == "UP" }); err != nil {
			return nil, fmt.Errorf("%w\nlbagent %s:\n%s", err, n.Name, n.Log(20))
		}
	}
	return c, nil
}

func (c *Cluster) writeConfig() error {
	var b strings.Builder
	fmt.Fprintf(&b, "[balancer]\ntype = haproxy\nruntime-api = %s\nbackend = %s\ntimeout = 5s\n",
		c.HAProxy.AdminSocket, c.Backend)
	if c.ELBv2 != nil {
		fmt.Fprintf(&b, "\n[balancer \"nlb\"]\ntype = aws\ntarget-group-arn = %s\nregion = %s\nendpoint = %s\ntimeout = 20s\n",
			c.TargetGroupARN, c.ELBv2.Region(), c.ELBv2.URL)
	}
	if c.Nginx != nil {
		fmt.Fprintf(&b, "\n[balancer \"edge\"]\ntype = nginx\nnginx-conf = %s\nservers-file = %s\nport = %d\ntimeout = 10s\n",
			c.Nginx.Conf, c.ServersFile, c.MsgPort)
	}
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "\n[node %q]\naddress = %s\nrole = %s\nhealth-port = %d\nagent-port = %d\nserver = %s\n",
			n.Name, n.IP, n.Role, n.HealthPort, n.AgentPort, n.Name)
		if c.ELBv2 != nil {
			fmt.Fprintf(&b, "target-port = %d\n", n.MsgPort())
		}
	}
	c.ConfigPath = filepath.Join(c.Dir, "cluster.ini")
	return os.WriteFile(c.ConfigPath, []byte(b.String()), 0o600)
}

// Node returns the node called name, or nil.
func (c *Cluster) Node(name string) *ClusterNode {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// ServerStatus returns HAProxy's status column and scur of a server of the backend, read
// with testenv's own minimal CLI.
func (c *Cluster) ServerStatus(ctx context.Context, server string) (status string, sessions int, err error) {
	out, err := c.HAProxy.CLI(ctx, "show stat")
	if err != nil {
		return "", 0, err
	}
	lines := strings.Split(out, "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# ") {
		return "", 0, fmt.Errorf("testenv: show stat: no header")
	}
	col := map[string]int{}
	for i, name := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
		col[name] = i
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) <= col["status"] || len(f) <= col["scur"] || f[col["pxname"]] != c.Backend || f[col["svname"]] != server {
			continue
		}
		n, _ := strconv.Atoi(f[col["scur"]])
		return f[col["status"]], n, nil
	}
	return "", 0, fmt.Errorf("testenv: no server %s/%s in show stat", c.Backend, server)
}

// WaitServer polls HAProxy every 10ms until the server's status satisfies ok or ctx is done.
func (c *Cluster) WaitServer(ctx context.Context, server string, ok func(status string) bool) error {
	last := ""
	for {
		st, _, err := c.ServerStatus(ctx, server)
		if err == nil && ok(st) {
			return nil
		}
		if err == nil {
			last = st
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s/%s still %q: %w", c.Backend, server, last, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops every process and removes the cluster's directory.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.StopAgent())
		if n.Msg != nil {
			errs = append(errs, n.Msg.Close())
		}
	}
	if c.HAProxy != nil {
		errs = append(errs, c.HAProxy.Close())
	}
	if c.ELBv2 != nil {
		errs = append(errs, c.ELBv2.Close())
	}
	if c.Nginx != nil {
		errs = append(errs, c.Nginx.Close())
	}
	if c.DB != nil && c.ownDB {
		errs = append(errs, c.DB.Close())
	}
	errs = append(errs, os.RemoveAll(c.Dir))
	return errors.Join(errs...)
}

// StartAgent starts the node's lbagent and waits until its /status answers.
func (n *ClusterNode) StartAgent(ctx context.Context) error {
	if n.proc != nil {
		return errors.New("testenv: lbagent already running")
	}
	proc, err := startLogged(exec.Command(n.bin, "run", "--xroad-dir", n.XRoad.XRoadDir, "--ocsp-cache-dir", n.XRoad.OCSPDir,
		"--admin-listen", n.AdminAddr), filepath.Join(n.dir, "lbagent.log"))
	if err != nil {
		return err
	}
	n.proc = proc
	exited := proc.exited
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			n.proc = nil
			return fmt.Errorf("testenv: lbagent %s exited at start:\n%s", n.Name, n.Log(20))
		default:
		}
		resp, err := client.Get(n.StatusURL())
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: lbagent %s: /status not answering: %w\n%s", n.Name, ctx.Err(), n.Log(20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StopAgent stops the node's lbagent (SIGTERM, then SIGKILL after 10 s).
func (n *ClusterNode) StopAgent() error {
	if n.proc == nil {
		return nil
	}
	n.proc.stop(syscall.SIGTERM, 10*time.Second)
	n.proc = nil
	return nil
}

// StateFile is the agent's state file ([agent-check] state-file): the agent-check's and
// push's own drain, kept over restarts.
func (n *ClusterNode) StateFile() string { return filepath.Join(n.dir, "agentcheck.state") }

// StatusURL is the agent's /status address.
func (n *ClusterNode) StatusURL() string {
	return "http://" + net.JoinHostPort(n.IP, strconv.Itoa(n.HealthPort)) + "/status"
}

// SetMaintenance switches the agent's maintenance mode through its admin port, as an
// operator's curl does.
func (n *ClusterNode) SetMaintenance(ctx context.Context, on bool) error {
	_, err := n.Maintenance(ctx, on)
	return err
}

// Maintenance is SetMaintenance that returns the agent's answer, as curl prints it
// ("Maintenance mode set: false => true\n").
func (n *ClusterNode) Maintenance(ctx context.Context, on bool) (string, error) {
	url := fmt.Sprintf("http://%s/maintenance?targetState=%t", n.AdminAddr, on)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("testenv: maintenance %s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("testenv: maintenance %s: %w", n.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("testenv: maintenance %s: HTTP %d %s", n.Name, resp.StatusCode, body)
	}
	return string(body), nil
}

// Log returns the last lines of the node's lbagent output.
func (n *ClusterNode) Log(lines int) string { return tail(n.LogPath(), lines) }

// LogPath is the file the node's lbagent output is appended to (over restarts).
func (n *ClusterNode) LogPath() string { return filepath.Join(n.dir, "lbagent.log") }

// MsgPort is the port of the node's message-port stand-in.
func (n *ClusterNode) MsgPort() int {
	_, p, _ := net.SplitHostPort(n.Msg.Addr)
	port, _ := strconv.Atoi(p)
	return port
}

// startELBv2 starts the local ELBv2 endpoint with one target group of every node, registered
// and healthy.
func (c *Cluster) startELBv2(ctx context.Context, opts ClusterOptions, healthPort int) (err error) {
	if c.ELBv2, err = elbv2.Start(elbv2.Options{}); err != nil {
		return err
	}
	hc := opts.ELBv2Check
	hc.Port = strconv.Itoa(healthPort)
	if hc.Matcher == "" {
		hc.Matcher = "200"
	}
	if hc.Interval == 0 {
		hc.Interval = 200 * time.Millisecond
	}
	if hc.HealthyThreshold == 0 {
		hc.HealthyThreshold = 2
	}
	if hc.UnhealthyThreshold == 0 {
		hc.UnhealthyThreshold = 2
	}
	delay := opts.ELBv2DelaySeconds
	if delay == 0 {
		delay = 1
	}
	if c.TargetGroupARN, err = c.ELBv2.CreateTargetGroup(elbv2.TargetGroup{Name: "xroad-ss", Protocol: "TCP",
		Port: 5500, HealthCheck: hc, DeregistrationDelaySeconds: delay}); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if err := c.ELBv2.Register(c.TargetGroupARN, n.IP, n.MsgPort()); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := c.ELBv2.WaitHealth(ctx, c.TargetGroupARN, n.IP, n.MsgPort(), elbv2.StateHealthy); err != nil {
			return fmt.Errorf("%w\nlbagent %s:\n%s", err, n.Name, n.Log(20))
		}
	}
	return nil
}

// AWSEnv is the environment for an lbadapter run against the cluster's ELBv2 endpoint: its
// test credentials, no shared config files (missing), no instance metadata lookups.
func (c *Cluster) AWSEnv() []string {
	id, secret := c.ELBv2.Credentials()
	none := filepath.Join(c.Dir, "no-aws-config")
	return []string{"AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_SESSION_TOKEN=",
		"AWS_PROFILE=", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_ENDPOINT_URL=", "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2="}
}

// startNginx writes the servers file (one line per node) and starts nginx with a stream
// server on 127.0.0.1 whose upstream includes it.
func (c *Cluster) startNginx(ctx context.Context) error {
	var lines strings.Builder
	lines.WriteString("# xroad 5500 (testenv)\n")
	for _, n := range c.Nodes {
		fmt.Fprintf(&lines, "server %s;\n", n.Msg.Addr)
	}
	c.ServersFile = filepath.Join(c.Dir, "xroad.servers")
	if err := os.WriteFile(c.ServersFile, []byte(lines.String()), 0o644); err != nil {
		return err
	}
	port, err := FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	c.NginxFrontend = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c.Nginx, err = StartNginx(ctx, NginxOptions{Workers: "2", WaitFor: c.NginxFrontend, Main: "worker_shutdown_timeout 5m;", Stream: fmt.Sprintf(`
    upstream xroad_5500 {
        include %s;
    }
    server {
        listen %s;
        proxy_pass xroad_5500;
    }`, c.ServersFile, c.NginxFrontend)})
	return err
}
