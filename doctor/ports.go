package doctor

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/settings"
)

// Port is a TCP port the cluster needs, and the programs that may hold it.
type Port struct {
	Number int
	Name   string   // what it is for
	Owners []string // process names (/proc/PID/comm) that may listen on it
}

// xroadPorts are X-Road's own ports between the security servers (its proxy holds them).
var xroadPorts = []Port{
	{5500, "X-Road message exchange", []string{"java", "xroad-proxy"}},
	{5577, "X-Road OCSP responses", []string{"java", "xroad-proxy"}},
}

// nodePorts are X-Road's ports and the ones this node's configuration gives lbagent: the
// health check port (X-Road's proxy holds it when lbagent does not run), the agent-check
// port and the admin port.
func nodePorts(health xroad.HealthCheck, settings *settings.Settings, admin string) []Port {
	ports := append([]Port(nil), xroadPorts...)
	if health.Port != 0 {
		ports = append(ports, Port{health.Port, "health check port", []string{"lbagent", "java"}})
	}
	if settings != nil {
		if ac, err := agentcheck.LoadConfig(settings, health); err == nil && ac.Listen != "" {
			if n := portOf(ac.Listen); n > 0 {
				ports = append(ports, Port{n, "agent-check port", []string{"lbagent"}})
			}
		}
	}
	if n := portOf(admin); n > 0 {
		ports = append(ports, Port{n, "lbagent admin port", []string{"lbagent"}})
	}
	return ports
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// listeners maps each listening TCP port to the names of the processes holding it, read
// from /proc (a port whose holder cannot be seen maps to "?").
func listeners(proc string) (map[int][]string, error) {
	inodes := map[string]int{} // socket inode -> port
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		fh, err := os.Open(filepath.Join(proc, f))
		if err != nil {
			if f == "net/tcp6" {
				continue
			}
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if ok && err == nil {
				inodes[fields[9]] = int(port)
			}
		}
		fh.Close()
	}
	out := map[int][]string{}
	pids, _ := filepath.Glob(filepath.Join(proc, "[0-9]*"))
	for _, pid := range pids {
		fds, _ := os.ReadDir(filepath.Join(pid, "fd"))
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(pid, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(target, "socket:[") {
				continue
			}
			port, ok := inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")]
			if !ok {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join(pid, "comm"))
			out[port] = appendOnce(out[port], strings.TrimSpace(string(comm)))
		}
	}
	for _, port := range inodes {
		if _, ok := out[port]; !ok {
			out[port] = []string{"?"}
		}
	}
	return out, nil
}

func appendOnce(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

// portFindings says, for each port, that it is free or held by one of its owners, else who
// holds it.
func portFindings(proc string, ports []Port) []Finding {
	held, err := listeners(proc)
	if err != nil {
		return []Finding{{Fail, "3.4", fmt.Sprintf("listening ports: %v", err)}}
	}
	var out []Finding
	for _, p := range ports {
		names := held[p.Number]
		var others []string
		for _, n := range names {
			if !contains(p.Owners, n) {
				others = append(others, n)
			}
		}
		switch {
		case len(names) == 0:
			out = append(out, Finding{OK, "3.4", fmt.Sprintf("port %d (%s) free", p.Number, p.Name)})
		case len(others) == 0:
			out = append(out, Finding{OK, "3.4", fmt.Sprintf("port %d (%s) held by %s", p.Number, p.Name, strings.Join(names, ", "))})
		default:
			out = append(out, Finding{Fail, "3.4", fmt.Sprintf("port %d (%s) held by %s, not %s: stop it or move it",
				p.Number, p.Name, strings.Join(others, ", "), strings.Join(p.Owners, " or "))})
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
