package elbv2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// TargetGroup is a target group's settings. Zero fields get AWS's defaults for an NLB group
// (TCP, health check HTTP on the traffic port, path /, matcher 200-399, interval 30 s,
// timeout 6 s, thresholds 5 and 2, deregistration delay 300 s), except that the interval
// and timeout may be shorter than AWS allows, so tests run fast.
type TargetGroup struct {
	Name        string
	Protocol    string // TCP (NLB) or HTTP (ALB)
	Port        int    // the traffic port
	HealthCheck HealthCheck
	// DeregistrationDelaySeconds is deregistration_delay.timeout_seconds (default 300; set
	// NoDeregistrationDelay for 0).
	DeregistrationDelaySeconds int
	NoDeregistrationDelay      bool
}

// HealthCheck is a target group's health check.
type HealthCheck struct {
	Protocol           string // HTTP or TCP
	Port               string // a port number or "traffic-port"
	Path               string
	Matcher            string // HTTP codes: "200", "200-399", "200,202"
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
}

// Target states and reasons, as ELBv2 names them.
const (
	StateInitial   = "initial"
	StateHealthy   = "healthy"
	StateUnhealthy = "unhealthy"
	StateDraining  = "draining"
	StateUnused    = "unused"

	ReasonRegistrationInProgress   = "Elb.RegistrationInProgress"
	ReasonInitialHealthChecking    = "Elb.InitialHealthChecking"
	ReasonResponseCodeMismatch     = "Target.ResponseCodeMismatch"
	ReasonTimeout                  = "Target.Timeout"
	ReasonFailedHealthChecks       = "Target.FailedHealthChecks"
	ReasonDeregistrationInProgress = "Target.DeregistrationInProgress"
	ReasonNotRegistered            = "Target.NotRegistered"
)

var descriptions = map[string]string{
	ReasonRegistrationInProgress:   "Target registration is in progress",
	ReasonInitialHealthChecking:    "Initial health checks in progress",
	ReasonTimeout:                  "Request timed out",
	ReasonFailedHealthChecks:       "Health checks failed",
	ReasonDeregistrationInProgress: "Target deregistration is in progress",
	ReasonNotRegistered:            "Target is not registered to the target group",
}

// Check is one health check of a target.
type Check struct {
	At     time.Time
	OK     bool
	Code   int    // HTTP status, 0 for TCP or no answer
	Reason string // why it failed
}

// Health is a target's state in a group.
type Health struct {
	State, Reason, Description string
}

type ref struct {
	id   string
	port int
}

type group struct {
	arn     string
	cfg     TargetGroup
	targets map[ref]*target
}

type target struct {
	ref
	health  Health
	passes  int // consecutive
	fails   int
	checks  []Check // since the last registration
	cancel  context.CancelFunc
	drained *time.Timer
}

func (t *target) stop() {
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
	if t.drained != nil {
		t.drained.Stop()
		t.drained = nil
	}
}

// CreateTargetGroup adds a target group (target type ip) and returns its ARN.
func (s *Server) CreateTargetGroup(tg TargetGroup) (string, error) {
	if tg.Name == "" || tg.Port < 1 || tg.Port > 65535 {
		return "", errors.New("elbv2: a target group needs a name and a port")
	}
	if tg.Protocol == "" {
		tg.Protocol = "TCP"
	}
	hc := &tg.HealthCheck
	if hc.Protocol == "" {
		hc.Protocol = "HTTP"
	}
	if hc.Protocol != "HTTP" && hc.Protocol != "TCP" {
		return "", fmt.Errorf("elbv2: health check protocol %q: only HTTP and TCP", hc.Protocol)
	}
	if hc.Port == "" {
		hc.Port = "traffic-port"
	}
	if hc.Path == "" && hc.Protocol == "HTTP" {
		hc.Path = "/"
	}
	if hc.Matcher == "" && hc.Protocol == "HTTP" {
		hc.Matcher = "200-399"
	}
	if hc.Interval <= 0 {
		hc.Interval = 30 * time.Second
	}
	if hc.Timeout <= 0 {
		hc.Timeout = min(6*time.Second, hc.Interval)
	}
	if hc.HealthyThreshold <= 0 {
		hc.HealthyThreshold = 5
	}
	if hc.UnhealthyThreshold <= 0 {
		hc.UnhealthyThreshold = 2
	}
	if tg.DeregistrationDelaySeconds == 0 && !tg.NoDeregistrationDelay {
		tg.DeregistrationDelaySeconds = 300
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	arn := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%016x", s.opts.Region, s.opts.Account, tg.Name, len(s.order)+0x6d0ecf831eec9f00)
	s.groups[arn] = &group{arn: arn, cfg: tg, targets: map[ref]*target{}}
	s.order = append(s.order, arn)
	return arn, nil
}

// Register registers a target as RegisterTargets does (port 0: the group's port).
func (s *Server) Register(arn, id string, port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.group(arn)
	if e == nil {
		e = s.register(g, []ref{{id, port}})
	}
	if e != nil {
		return e
	}
	return nil
}

// Health is the target's state, as DescribeTargetHealth naming it shows it.
func (s *Server) Health(arn, id string, port int) Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[arn]
	if g == nil {
		return Health{}
	}
	return g.health(g.ref(id, port))
}

// Checks are the target's health checks since its last registration.
func (s *Server) Checks(arn, id string, port int) []Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[arn]
	if g == nil {
		return nil
	}
	if t := g.targets[g.ref(id, port)]; t != nil {
		return append([]Check(nil), t.checks...)
	}
	return nil
}

// WaitHealth polls every 10ms until the target's state is want or ctx is done.
func (s *Server) WaitHealth(ctx context.Context, arn, id string, port int, want string) error {
	for {
		h := s.Health(arn, id, port)
		if h.State == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("elbv2: target %s:%d still %s (%s): %w", id, port, h.State, h.Reason, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Server) group(arn string) (*group, *apiError) {
	if g := s.groups[arn]; g != nil {
		return g, nil
	}
	return nil, &apiError{http.StatusBadRequest, "TargetGroupNotFound", fmt.Sprintf("Target groups '%s' not found", arn)}
}

func (g *group) ref(id string, port int) ref {
	if port == 0 {
		port = g.cfg.Port
	}
	return ref{id, port}
}

func (g *group) health(r ref) Health {
	if t := g.targets[r]; t != nil {
		return t.health
	}
	return Health{StateUnused, ReasonNotRegistered, descriptions[ReasonNotRegistered]}
}

// validTarget accepts the IP targets the endpoint can reach: loopback addresses only.
func validTarget(id string) *apiError {
	if ip := net.ParseIP(id); ip == nil || !ip.IsLoopback() {
		return &apiError{http.StatusBadRequest, "InvalidTarget",
			fmt.Sprintf("The IP address '%s' is not a valid target: this endpoint only reaches loopback addresses", id)}
	}
	return nil
}

func (s *Server) register(g *group, refs []ref) *apiError {
	if s.closed {
		return &apiError{http.StatusServiceUnavailable, "ServiceUnavailable", errClosed.Error()}
	}
	for _, r := range refs {
		if e := validTarget(r.id); e != nil {
			return e
		}
	}
	for _, r := range refs {
		r = g.ref(r.id, r.port)
		t := g.targets[r]
		if t != nil && t.health.State != StateDraining {
			continue // already registered: nothing changes
		}
		if t != nil {
			t.stop()
		}
		t = &target{ref: r, health: Health{StateInitial, ReasonRegistrationInProgress, descriptions[ReasonRegistrationInProgress]}}
		g.targets[r] = t
		ctx, cancel := context.WithCancel(context.Background())
		t.cancel = cancel
		go s.healthCheck(ctx, g, t)
	}
	return nil
}

func (s *Server) deregister(g *group, refs []ref) *apiError {
	for _, r := range refs {
		if e := validTarget(r.id); e != nil {
			return e
		}
	}
	for _, r := range refs {
		r = g.ref(r.id, r.port)
		t := g.targets[r]
		if t == nil || t.health.State == StateDraining {
			continue // not registered: AWS answers success
		}
		t.stop()
		t.health = Health{StateDraining, ReasonDeregistrationInProgress, descriptions[ReasonDeregistrationInProgress]}
		delay := time.Duration(g.cfg.DeregistrationDelaySeconds) * time.Second
		if delay == 0 {
			delete(g.targets, r)
			continue
		}
		t.drained = time.AfterFunc(delay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if g.targets[r] == t && t.health.State == StateDraining {
				delete(g.targets, r)
			}
		})
	}
	return nil
}
