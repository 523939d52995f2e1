// Package doctor checks a node's X-Road files against the External Load Balancer
// Installation Guide and says what to fix, chapter by chapter.
package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/settings"
	"github.com/xroad-lb/lbkit/sync/confsync"
)

// Severity of a finding; the worst one is lbagent doctor's exit code.
type Severity int

const (
	Skipped Severity = -1 // a check that could not apply (shown with --debug); never the exit code
	OK      Severity = 0
	Warn    Severity = 1
	Fail    Severity = 2
)

func (s Severity) String() string {
	if s == Skipped {
		return "skip"
	}
	return [...]string{"ok", "warn", "FAIL"}[s]
}

// Finding is one line of the report.
type Finding struct {
	Severity Severity
	Chapter  string // of the guide, e.g. "3.4"
	Message  string // what is wrong and what to do, or what is right
}

// Options say where the node's files are.
type Options struct {
	XRoadDir     string // default /etc/xroad
	PostgresUser string // owner of the TLS files; default postgres
	Admin        string // lbagent's admin port; default 127.0.0.1:5566
	Ports        []Port // default: X-Road's 5500 and 5577 and the node's lbagent ports
	Proc         string // default /proc

	// ReplicationRole is the group role of the replication users in the primary's
	// pg_hba.conf rule; default slavenode (the guide's).
	ReplicationRole string
	// HBAFile is the primary's serverconf pg_hba.conf; default: the instance's hba_file,
	// asked with db.properties' user.
	HBAFile string
	// PrimaryAgent is the primary's lbagent health port (host:port) for the clock check;
	// default: [sync] primary's host with this node's health check port.
	PrimaryAgent   string
	MaxClockOffset time.Duration   // default DefaultMaxClockOffset
	Timeout        time.Duration   // of each network step; default DefaultTimeout
	Clock          clockwork.Clock // default the real clock
}

// Check reads the node's files and returns one finding per check, in the guide's order.
func Check(o Options) []Finding {
	if o.XRoadDir == "" {
		o.XRoadDir = xroad.DefaultDir
	}
	if o.PostgresUser == "" {
		o.PostgresUser = "postgres"
	}
	if o.Admin == "" {
		o.Admin = xroad.DefaultAdmin
	}
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.ReplicationRole == "" {
		o.ReplicationRole = "slavenode"
	}
	if o.MaxClockOffset <= 0 {
		o.MaxClockOffset = DefaultMaxClockOffset
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	var out []Finding
	add := func(sev Severity, chapter, format string, args ...any) {
		out = append(out, Finding{sev, chapter, fmt.Sprintf(format, args...)})
	}
	local := filepath.Join(o.XRoadDir, "conf.d", "local.ini")

	role, err := xroad.ReadNodeType(o.XRoadDir)
	switch {
	case err != nil:
		add(Fail, "3.3", "%v", err)
	case role == xroad.Standalone:
		add(Warn, "3.3", "conf.d/node.ini: [node] type is not set: this node is standalone (type=master on the primary, type=slave on secondaries)")
	default:
		add(OK, "3.3", "conf.d/node.ini: [node] type = %s", map[xroad.Role]string{xroad.Primary: "master", xroad.Secondary: "slave"}[role])
	}

	var health xroad.HealthCheck
	lc, err := settings.LoadXRoad(o.XRoadDir)
	if err != nil {
		add(Fail, "3.4", "%v", err)
	} else {
		hc, err := xroad.ReadHealthCheck(lc)
		health = hc
		switch {
		case err != nil:
			add(Fail, "3.4", "%v", err)
		case hc.Port == 0:
			add(Fail, "3.4", "%s: [proxy] health-check-port is 0: the health check is off; set health-check-port = 5588", local)
		default:
			if ip, err := netip.ParseAddr(hc.Interface); err == nil && ip.IsLoopback() {
				add(Warn, "3.4", "%s: [proxy] health-check-interface = %s: a balancer on another machine cannot reach it; use 0.0.0.0 or the balancer-facing address", local, hc.Interface)
			} else {
				add(OK, "3.4", "health check port %s", hc.Addr())
			}
			out = append(out, healthProbe(o, hc))
		}
		// The guide (3.2) asks for this one setting about pooled connections; it requires no
		// hikari (database connection pool) setting in db.properties, so there is no check of
		// those.
		switch v := strings.ToLower(lc.String("proxy", "server-support-clients-pooled-connections", "")); v {
		case "false":
			add(OK, "3.2", "[proxy] server-support-clients-pooled-connections = false")
		default:
			add(Fail, "3.2", "%s: [proxy] server-support-clients-pooled-connections = %q: set it to false (the balancer must see each client connection)", local, v)
		}
	}

	if o.Ports == nil {
		settings, _ := settings.LoadLbagent(o.XRoadDir) // its errors are lbagent run's to report
		o.Ports = nodePorts(health, settings, o.Admin)
	}
	out = append(out, portFindings(o.Proc, o.Ports)...)
	if role != xroad.Standalone {
		out = append(out, dbFindings(o)...)
		if d, err := xroad.ReadDBProperties(o.XRoadDir, "serverconf"); err == nil && d.Port != 5432 {
			if role == xroad.Primary {
				out = append(out, hbaFinding(o, d))
			} else {
				out = append(out, streamingFinding(o, d))
			}
		}
	}
	if role == xroad.Secondary {
		out = append(out, syncFindings(o)...)
		out = append(out, clockFinding(o, health))
	}
	return out
}

func dbFindings(o Options) []Finding {
	var out []Finding
	add := func(sev Severity, chapter, format string, args ...any) {
		out = append(out, Finding{sev, chapter, fmt.Sprintf(format, args...)})
	}
	d, err := xroad.ReadDBProperties(o.XRoadDir, "serverconf")
	switch {
	case err != nil:
		add(Fail, "3.3", "%v", err)
	case d.Port == 5432:
		add(Fail, "3.3", "%s: serverconf.hibernate.connection.url uses port 5432 (the messagelog instance): point it at the replicated serverconf instance (5433)", d.Path)
	default:
		add(OK, "3.3", "db.properties: serverconf at %s", d)
	}

	pg, err := user.Lookup(o.PostgresUser)
	if err != nil {
		add(Fail, "4.1", "user %s: %v", o.PostgresUser, err)
		return out
	}
	uid, _ := strconv.Atoi(pg.Uid)
	for _, name := range []string{"ca.crt", "server.crt", "server.key"} {
		p := filepath.Join(o.XRoadDir, "postgresql", name)
		fi, err := os.Stat(p)
		if err != nil {
			add(Fail, "4.1", "%s: %v: create the TLS files (lbagent certs)", p, errors.Unwrap(err))
			continue
		}
		var problems []string
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
			problems = append(problems, fmt.Sprintf("owned by uid %d, not %s (chown %s %s)", st.Uid, o.PostgresUser, o.PostgresUser, p))
		}
		if name == "server.key" && fi.Mode().Perm() != 0o600 {
			problems = append(problems, fmt.Sprintf("mode %04o, not 0600 (chmod 600 %s)", fi.Mode().Perm(), p))
		}
		if len(problems) > 0 {
			add(Fail, "4.1", "%s: %s", p, strings.Join(problems, "; "))
		} else {
			add(OK, "4.1", "%s", p)
		}
	}
	return out
}

func syncFindings(o Options) []Finding {
	var out []Finding
	add := func(sev Severity, chapter, format string, args ...any) {
		out = append(out, Finding{sev, chapter, fmt.Sprintf(format, args...)})
	}
	c, err := confsync.LoadConfig(o.XRoadDir)
	if err != nil {
		add(Fail, "5.1", "%v", err)
		return out
	}
	ids := confsync.DefaultIdentities
	if c.Identity != "" {
		ids = []string{c.Identity}
	}
	var key string
	for _, id := range ids {
		if _, err := os.Stat(id); err == nil {
			key = id
			break
		}
	}
	if key == "" {
		add(Fail, "5.1", "no SSH key for the sync (%s): ssh-keygen as xroad, then copy the public key to the primary", strings.Join(ids, ", "))
	} else {
		add(OK, "5.1", "SSH key %s", key)
	}
	if _, err := os.Stat(c.KnownHosts); err != nil {
		add(Fail, "5.1", "%s: %v: connect once as xroad to the primary to record its host key", c.KnownHosts, errors.Unwrap(err))
	} else {
		add(OK, "5.1", "known_hosts %s", c.KnownHosts)
	}
	switch _, err := os.Stat(c.PauseFile); {
	case err == nil:
		add(Warn, "7.2.1", "%s exists: configuration sync is paused (remove it when the upgrade is done)", c.PauseFile)
	case errors.Is(err, fs.ErrNotExist):
		add(OK, "7.2.1", "sync not paused (%s absent)", c.PauseFile)
	default:
		add(Fail, "7.2.1", "%s: %v", c.PauseFile, err)
	}
	return out
}

// Worst is the highest severity among fs (OK for none).
func Worst(fs []Finding) Severity {
	w := OK
	for _, f := range fs {
		w = max(w, f.Severity)
	}
	return w
}
