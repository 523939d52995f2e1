package nginx

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Conns is what nginx's workers hold towards one upstream server.
type Conns struct {
	Established int // established connections from any worker to the server
	OldWorkers  int // workers of before a reload still finishing their connections
	// OldWorkersHolding is how many of the old workers hold a connection to the server.
	OldWorkersHolding int
}

// Connections counts the established TCP connections from the master's workers to ip:port,
// from /proc (the caller must be root or nginx's user to see the workers' sockets).
func (in Instance) Connections(ip net.IP, port int) (Conns, error) {
	master, err := in.MasterPID()
	if err != nil {
		return Conns{}, err
	}
	ws, err := workers(master)
	if err != nil {
		return Conns{}, err
	}
	owner := map[string]int{} // socket inode -> worker index
	var c Conns
	for i, w := range ws {
		if w.shuttingDown {
			c.OldWorkers++
		}
		fds := filepath.Join("/proc", strconv.Itoa(w.pid), "fd")
		ents, err := os.ReadDir(fds)
		if err != nil {
			if os.IsNotExist(err) {
				continue // exited meanwhile
			}
			return Conns{}, fmt.Errorf("read nginx worker %d's sockets: %w", w.pid, err)
		}
		for _, e := range ents {
			l, err := os.Readlink(filepath.Join(fds, e.Name()))
			if err == nil && strings.HasPrefix(l, "socket:[") {
				owner[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = i
			}
		}
	}
	holding := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		inodes, err := established(filepath.Join("/proc", strconv.Itoa(master), "net", table), ip, port)
		if err != nil {
			return Conns{}, err
		}
		for _, ino := range inodes {
			if i, ok := owner[ino]; ok {
				c.Established++
				if ws[i].shuttingDown {
					holding[i] = true
				}
			}
		}
	}
	c.OldWorkersHolding = len(holding)
	return c, nil
}

// established returns the socket inodes of the table's ESTABLISHED connections to ip:port.
func established(path string, ip net.IP, port int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil // no IPv6
		}
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fl := strings.Fields(sc.Text())
		if len(fl) < 10 || fl[3] != "01" {
			continue
		}
		rip, rport, ok := parseProcAddr(fl[2])
		if ok && rport == port && rip.Equal(ip) {
			out = append(out, fl[9])
		}
	}
	return out, sc.Err()
}

// parseProcAddr reads /proc/net/tcp's "0100007F:1F90": the address in the kernel's byte order
// (32-bit words in host order, little-endian here), the port in hex.
func parseProcAddr(s string) (net.IP, int, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, false
	}
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, 0, false
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, false
	}
	return net.IP(b), int(port), true
}
