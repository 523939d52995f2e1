package agent

import (
	"net"
	"strconv"

	"github.com/valyala/fasthttp/reuseport"
)

// listenShared opens n listeners on addr with SO_REUSEPORT, so the kernel spreads new
// connections over n accept loops (one per CPU), as nginx's workers do. Where that is not
// possible it falls back to one ordinary listener. Port 0 picks one free port for all.
func listenShared(addr string, n int) ([]net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	// An ordinary bind first, so a port held by another program (or a second lbagent) is an
	// "address already in use" error rather than a silently shared port.
	probe, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if port == "0" {
		port = strconv.Itoa(probe.Addr().(*net.TCPAddr).Port)
		addr = net.JoinHostPort(host, port)
	}
	probe.Close()
	network := "tcp4"
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		network = "tcp6"
	}
	first, err := reuseport.Listen(network, addr)
	if err != nil || n <= 1 {
		if err == nil {
			return []net.Listener{first}, nil
		}
		ln, lerr := net.Listen("tcp", addr)
		if lerr != nil {
			return nil, lerr
		}
		return []net.Listener{ln}, nil
	}
	lns := []net.Listener{first}
	for i := 1; i < n; i++ {
		ln, err := reuseport.Listen(network, addr)
		if err != nil {
			break // one listener is enough to serve
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}
