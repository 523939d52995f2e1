package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"

	"github.com/xroad-lb/lbkit/agent/adminport"
	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/connlimit"
	"github.com/xroad-lb/lbkit/agent/healthport"
	"github.com/xroad-lb/lbkit/agent/ratelog"
	"github.com/xroad-lb/lbkit/agent/redact"
	"github.com/xroad-lb/lbkit/agent/verdict"
	"github.com/xroad-lb/lbkit/agent/xroad"
	"github.com/xroad-lb/lbkit/agent/xroadcheck"
)

// Component is one part of the daemon beyond the X-Road checks (agent-check port, push,
// config sync, replication watch), with every face it shows. Build it with the agent's Store
// (and Limiter) and plug it in with Agent.Add before Listen. Every field but Name is optional.
type Component struct {
	Name   string
	Checks []check.Spec // run after X-Road's checks, in this order (0 timings: lbagent.ini's)
	// Setup runs once in Listen, in the order the components were added, before the checks
	// start and before the daemon reports ready: bind the part's own ports, complete work a
	// crash interrupted. An error stops the start (--check-config never calls it).
	Setup func() error
	// Run is a background worker, started by Run and stopped with the daemon (ctx ends); an
	// error stops the daemon, a nil return before that is allowed.
	Run        func(context.Context) error
	Status     func() any               // shown in /status under components.<Name>
	Collectors []prometheus.Collector   // added to /metrics
	LBLine     func(peer string) []byte // serves /lb on the health port (one component at most)
}

// errStoppedServing is the error of a port whose accept loop ended before the daemon stopped
// (its listener was closed under it).
var errStoppedServing = errors.New("stopped serving")

// Agent is the daemon.
type Agent struct {
	cfg        Config
	log        zerolog.Logger
	clock      clockwork.Clock
	store      *verdict.Store
	specs      []check.Spec   // X-Road's checks, then the components', with lbagent.ini's timings
	ownTiming  []check.Timing // each check's timing as its component set it (0 = lbagent.ini's)
	runner     *check.Runner  // built by Listen, over specs
	serverconf *xroadcheck.ServerConf
	components []Component

	health      *healthport.Server
	admin       *adminport.Server
	healthLns   []net.Listener
	adminLn     net.Listener
	limiter     *connlimit.Limiter
	httpLog     *ratelog.Logger
	httpLogOnce sync.Once
	reload      sync.Mutex // one Reload at a time
}

// New builds the daemon from cfg with the X-Road checks in X-Road's order: the verdict store
// first (with maintenance mode restored from its state file, when one is configured), which
// the components then render (Add).
func New(cfg Config, log zerolog.Logger) (*Agent, error) {
	if cfg.Redactor == nil {
		cfg.Redactor = &redact.Redactor{}
	}
	a := &Agent{cfg: cfg, log: log, clock: clockwork.NewRealClock()}
	// One cap over the health and agent-check ports; the balancers get the reserved part.
	a.limiter = connlimit.NewWithClock(cfg.Limits(), func(ip netip.Addr) bool {
		return agentcheck.InPrefixes(cfg.Balancers, ip)
	}, a.clock)
	a.limiter.OnAcceptError = func(err error) { a.httpLogger().Printf("accept: %v", err) }
	a.store = verdict.NewStoreWithClock(string(cfg.Role), nil, a.clock)
	a.addChecks(a.xroadChecks())
	if err := a.restoreMaintenance(); err != nil {
		return nil, err
	}
	if path := cfg.MaintenanceStateFile; path != "" {
		a.store.PersistMaintenance(func(on bool) error { return writeMaintenance(path, on) })
	}
	return a, nil
}

// Add plugs c into the daemon: its checks join the store after those already there, its
// status, collectors, /lb line and worker are served from Listen and Run. Call before Listen.
func (a *Agent) Add(c Component) error {
	if a.runner != nil {
		return fmt.Errorf("component %s: added after Listen", c.Name)
	}
	for _, o := range a.components {
		if o.Name == c.Name {
			return fmt.Errorf("component %s: added twice", c.Name)
		}
		if o.LBLine != nil && c.LBLine != nil {
			return fmt.Errorf("component %s: /lb is served by %s already", c.Name, o.Name)
		}
	}
	a.addChecks(c.Checks)
	a.components = append(a.components, c)
	return nil
}

// addChecks adds specs to the store, with lbagent.ini's timings where a spec has none.
func (a *Agent) addChecks(specs []check.Spec) {
	cfg := a.cfg
	for _, s := range specs {
		a.ownTiming = append(a.ownTiming, check.Timing{Timeout: s.Timeout, PassTTL: s.PassTTL, FailTTL: s.FailTTL})
		if s.Timeout == 0 {
			s.Timeout = cfg.Timeout
		}
		if s.PassTTL == 0 {
			s.PassTTL = cfg.PassTTL
		}
		if s.FailTTL == 0 {
			s.FailTTL = cfg.FailTTL
		}
		a.specs = append(a.specs, s)
	}
	a.store.AddChecks(specs...)
}

func (a *Agent) xroadChecks() []check.Spec {
	c := a.cfg
	a.serverconf = xroadcheck.NewServerConf(c.ServerConf, func() (xroad.DBSettings, error) {
		d, err := xroad.ReadDBProperties(c.XRoadDir, "serverconf")
		c.Redactor.Add(d.Password) // a new password is masked before it can show anywhere
		return d, err
	})
	specs := []check.Spec{
		{Name: xroadcheck.NameGlobalConf, Run: xroadcheck.GlobalConf(c.XRoadDir, a.clock)},
		{Name: xroadcheck.NameAuthKey, Run: xroadcheck.AuthKeyOCSP(c.XRoadDir, c.OCSPCacheDir, a.clock)},
		{Name: xroadcheck.NameServerConf, Run: a.serverconf.Run},
	}
	if c.MemoryThreshold > 0 {
		specs = append(specs, check.Spec{Name: xroadcheck.NameMemory, Run: xroadcheck.Memory(c.MemInfo, c.MemoryThreshold)})
	}
	for _, t := range c.TCPChecks {
		specs = append(specs, check.Spec{Name: xroadcheck.TCPName(t.Name), Run: xroadcheck.TCP(t.Name, t.Addr)})
	}
	return specs
}

// Limiter is the connection cap shared by the public ports (the agent-check port joins it).
func (a *Agent) Limiter() *connlimit.Limiter { return a.limiter }

// httpLogger is the rate-limited logger of the HTTP servers' error lines.
func (a *Agent) httpLogger() *ratelog.Logger {
	a.httpLogOnce.Do(func() {
		a.httpLog = ratelog.New(a.log.With().Str("component", "http").Logger(), 0, a.clock)
	})
	return a.httpLog
}

// Store is the verdict store, for components that render it (agent-check port, push).
func (a *Agent) Store() *verdict.Store { return a.store }

// Config is the configuration the agent runs with.
func (a *Agent) Config() Config { return a.cfg }

// Listen runs the components' Setup, then binds the health port (unless disabled) and the
// admin port. On an error nothing stays bound by the agent itself.
func (a *Agent) Listen() error {
	if a.runner != nil {
		return errors.New("agent: Listen called twice")
	}
	a.runner = check.NewRunner(a.specs, a.store.SetResult)
	status := map[string]func() any{}
	var lbLine func(peer string) []byte
	reg := prometheus.NewRegistry()
	for _, c := range a.components {
		if c.Setup != nil {
			if err := c.Setup(); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
		}
		if c.Status != nil {
			status[c.Name] = c.Status
		}
		if c.LBLine != nil {
			lbLine = c.LBLine
		}
		for _, col := range c.Collectors {
			if err := reg.Register(col); err != nil {
				return fmt.Errorf("metrics of %s: %w", c.Name, err)
			}
		}
	}
	c := a.cfg
	a.health = healthport.New(a.store, healthport.Options{Components: status, LBLine: lbLine, Gatherer: reg,
		Limiter: a.limiter, Logger: a.httpLogger(), ReadTimeout: c.ReadTimeout, IdleTimeout: c.IdleTimeout,
		Redactor: c.Redactor, StatusToken: c.StatusToken, Clock: a.clock})
	if err := reg.Register(healthport.NewCollector(a.store, a.health)); err != nil {
		return err
	}
	if err := reg.Register(newPortCollector(a.limiter, a.httpLogger())); err != nil {
		return err
	}
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if a.cfg.Health.Port != 0 {
		lns, err := listenShared(a.cfg.Health.Addr(), runtime.GOMAXPROCS(0))
		if err != nil {
			return fmt.Errorf("health check port %s: %w", a.cfg.Health.Addr(), err)
		}
		a.healthLns = lns
	}
	// The admin port switches maintenance mode in the store, which persists it.
	a.admin = adminport.New(a.store, a.cfg.Health.Port != 0, adminport.Options{
		OnChange: a.maintenanceChanged, Logger: a.httpLogger(),
		Status: func(ctx *fasthttp.RequestCtx) { a.health.ServeStatus(ctx, true) }})
	ln, err := net.Listen("tcp", a.cfg.AdminListen)
	if err != nil {
		closeAll(a.healthLns)
		return fmt.Errorf("admin port %s: %w", a.cfg.AdminListen, err)
	}
	a.adminLn = ln
	return nil
}

// HealthAddr is the bound health port address ("" when disabled or not listening yet).
func (a *Agent) HealthAddr() string {
	if len(a.healthLns) == 0 {
		return ""
	}
	return a.healthLns[0].Addr().String()
}

// AdminAddr is the bound admin port address.
func (a *Agent) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// Run listens (if Listen was not called) and serves until ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	if a.adminLn == nil {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	a.logStartup()
	// One group supervises every part: the first to fail cancels the others, and Wait
	// collects them all, however many there are (one health accept loop per CPU).
	g, gctx := errgroup.WithContext(ctx)
	// worker runs a part that may end on its own; only an error stops the daemon.
	worker := func(name string, fn func(context.Context) error) {
		g.Go(func() error {
			if err := fn(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	// server runs an accept loop, which ends only at shutdown: ending before is an error.
	server := func(name string, serve func() error) {
		g.Go(func() error {
			err := serve()
			if gctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errStoppedServing
			}
			return fmt.Errorf("%s: %w", name, err)
		})
	}
	worker("checks", func(ctx context.Context) error { a.runner.Run(ctx); return nil })
	worker("verdict log", func(ctx context.Context) error { a.logVerdicts(ctx); return nil })
	for _, ln := range a.healthLns {
		server("health port", func() error { return a.health.Serve(ln) })
	}
	server("admin port", func() error { return a.admin.Serve(a.adminLn) })
	for _, c := range a.components {
		if c.Run != nil {
			worker(c.Name, c.Run)
		}
	}
	// The shutdown: when the daemon's context ends or a part fails.
	g.Go(func() error {
		<-gctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if len(a.healthLns) > 0 {
			_ = a.health.Shutdown(sctx)
		}
		_ = a.admin.Shutdown(sctx)
		// A server whose Serve had not started yet when Shutdown ran would serve on: closing
		// the listeners ends every accept loop, started or not.
		closeAll(append(a.healthLns, a.adminLn))
		return nil
	})
	err := g.Wait()
	if err != nil {
		a.log.Error().Err(err).Msg("stopping")
	}
	a.serverconf.Close()
	a.log.Info().Msg("stopped")
	return err
}

// Compile-time check: the admin port switches maintenance mode in the store.
var _ adminport.Maintenance = (*verdict.Store)(nil)
