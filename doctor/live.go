package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/db"
	"github.com/xroad-lb/lbkit/sync/confsync"
)

// The checks in this file talk to the running node: its health check port, its serverconf
// instance and the primary's lbagent.

// DefaultMaxClockOffset is the largest clock offset to the primary that passes: X-Road
// signs and time-stamps messages and checks OCSP responses' times, so the nodes' clocks must
// be synchronized (NTP).
const DefaultMaxClockOffset = time.Second

// DefaultTimeout bounds each network step of the live checks.
const DefaultTimeout = 5 * time.Second

func httpClient(timeout time.Duration) *http.Client {
	// No proxy from the environment: the probes go straight to the node's ports.
	return &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}

// probeHost is where a balancer-side probe of a health check interface goes: a wildcard
// interface is probed on loopback.
func probeHost(iface string) string {
	if ip, err := netip.ParseAddr(iface); iface == "" || (err == nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return iface
}

// healthProbe GETs the health check port as a balancer does; any of X-Road's answers
// (200 healthy, 500 failing, 503 maintenance) means it is served.
func healthProbe(o Options, hc xroad.HealthCheck) Finding {
	addr := net.JoinHostPort(probeHost(hc.Interface), strconv.Itoa(hc.Port))
	resp, err := httpClient(o.Timeout).Get("http://" + addr + "/")
	if err != nil {
		return Finding{Fail, "3.4", fmt.Sprintf("health check port %s: nothing answers (%v): start lbagent (or xroad-proxy with the health check on), or open the port to the balancers", addr, unwrapURL(err))}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case 200, 500, 503:
		return Finding{OK, "3.4", fmt.Sprintf("health check port %s answers %d", addr, resp.StatusCode)}
	}
	return Finding{Warn, "3.4", fmt.Sprintf("health check port %s answers %d, not one of X-Road's 200/500/503: another program holds it", addr, resp.StatusCode)}
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func serverconfConn(d xroad.DBSettings, timeout time.Duration) db.Conn {
	return db.Conn{Host: d.Host, Port: d.Port, User: d.User, Password: d.Password, DBName: d.Database,
		SSLMode: d.Params["sslmode"], CAFile: d.Params["sslrootcert"], CertFile: d.Params["sslcert"],
		KeyFile: d.Params["sslkey"], ConnectTimeout: timeout}
}

// streamingFinding asks the secondary's serverconf standby (db.properties) whether its WAL
// receiver streams from the primary, with the query of the replication watch.
func streamingFinding(o Options, d xroad.DBSettings) Finding {
	ctx, cancel := context.WithTimeout(context.Background(), 2*o.Timeout)
	defer cancel()
	c := serverconfConn(d, o.Timeout)
	conn, err := c.Connect(ctx)
	if err != nil {
		return Finding{Fail, "6.2", fmt.Sprintf("serverconf standby: %v: replication not checked", err)}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	s, err := db.StandbyStatus(ctx, conn)
	switch {
	case errors.Is(err, db.ErrNotStandby):
		return Finding{Fail, "4.4", fmt.Sprintf("serverconf at %s is not a standby: make it the primary's standby (lbagent db setup secondary)", c)}
	case err != nil:
		return Finding{Fail, "6.2", fmt.Sprintf("%v", err)}
	case !s.Streaming:
		return Finding{Fail, "6.2", fmt.Sprintf("serverconf standby at %s is not streaming from the primary (WAL receiver: %s): check its primary_conninfo, the primary's pg_hba.conf and the TLS files", c, orNone(s.ReceiverState))}
	}
	return Finding{OK, "6.2", fmt.Sprintf("serverconf standby streaming from %s:%d", s.SenderHost, s.SenderPort)}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// hbaFinding reads the primary's serverconf pg_hba.conf (o.HBAFile, else the instance's
// hba_file, which db.properties' user may read with pg_monitor) for the guide's replication
// rule.
func hbaFinding(o Options, d xroad.DBSettings) Finding {
	path := o.HBAFile
	if path == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*o.Timeout)
		defer cancel()
		c := serverconfConn(d, o.Timeout)
		conn, err := c.Connect(ctx)
		if err == nil {
			err = conn.QueryRow(ctx, "SHOW hba_file").Scan(&path)
			_ = conn.Close(context.WithoutCancel(ctx))
		}
		if err != nil {
			return Finding{Fail, "4.3", fmt.Sprintf("serverconf pg_hba.conf not found (%v): pass --pg-hba", err)}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Finding{Fail, "4.3", fmt.Sprintf("%v", err)}
	}
	if line, ok := db.HasReplicationRule(string(b), o.ReplicationRole); ok {
		return Finding{OK, "4.3", fmt.Sprintf("%s: %s", path, line)}
	}
	return Finding{Fail, "4.3", fmt.Sprintf("%s: no hostssl replication rule for +%s with cert (or scram-sha-256): the secondaries cannot replicate; add \"hostssl replication +%s samenet cert\" (lbagent db setup primary)", path, o.ReplicationRole, o.ReplicationRole)}
}

// primaryAgent is the primary's lbagent health port: o.PrimaryAgent, else the host of
// [sync] primary with this node's health check port (local.ini comes from the primary).
func primaryAgent(o Options, hc xroad.HealthCheck) string {
	if o.PrimaryAgent != "" {
		return o.PrimaryAgent
	}
	c, err := confsync.LoadConfig(o.XRoadDir)
	if err != nil || c.Primary == "" || hc.Port == 0 {
		return ""
	}
	host := c.Primary
	if h, _, err := net.SplitHostPort(c.Primary); err == nil {
		host = h
	}
	return net.JoinHostPort(host, strconv.Itoa(hc.Port))
}

// agentStatus is what the clock check reads of the primary's /status.
type agentStatus struct {
	Time   time.Time `json:"time"`
	Checks map[string][]struct {
		Time       string  `json:"time"`
		AgeSeconds float64 `json:"ageSeconds"`
	} `json:"checks"`
}

// remoteNow is the primary's clock when it answered: a check's end time plus its age (both
// from the primary's clock at that moment); the document's time (the verdict's, possibly a
// check interval old) when no check has run.
func (s agentStatus) remoteNow() time.Time {
	for _, cs := range s.Checks {
		for _, c := range cs {
			if t, err := time.Parse(time.RFC3339Nano, c.Time); err == nil {
				return t.Add(time.Duration(c.AgeSeconds * float64(time.Second)))
			}
		}
	}
	return s.Time
}

// clockFinding compares the primary lbagent's clock (/status on its health port) with ours.
func clockFinding(o Options, hc xroad.HealthCheck) Finding {
	addr := primaryAgent(o, hc)
	if addr == "" {
		return Finding{Skipped, "3.1", "clock offset to the primary skipped: its address is not known ([sync] primary or --primary-agent)"}
	}
	start := o.Clock.Now()
	resp, err := httpClient(o.Timeout).Get("http://" + addr + "/status")
	if err != nil {
		return Finding{Warn, "3.1", fmt.Sprintf("primary's lbagent at %s: %v: clock offset not checked", addr, unwrapURL(err))}
	}
	defer resp.Body.Close()
	var st agentStatus
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st)
	end := o.Clock.Now()
	if err != nil || st.Time.IsZero() {
		return Finding{Warn, "3.1", fmt.Sprintf("primary's lbagent at %s: /status has no time (%v): clock offset not checked", addr, err)}
	}
	offset := st.remoteNow().Sub(start.Add(end.Sub(start) / 2))
	if offset.Abs() > o.MaxClockOffset {
		return Finding{Fail, "3.1", fmt.Sprintf("clock offset to the primary (%s) is %s (more than %s): synchronize the nodes' clocks (NTP); X-Road needs them in step", addr, offset.Round(time.Millisecond), o.MaxClockOffset)}
	}
	return Finding{OK, "3.1", fmt.Sprintf("clock offset to the primary (%s) %s", addr, offset.Round(time.Millisecond))}
}
