package elbv2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// healthCheck checks the target every interval, the first time one interval after its
// registration, and moves it between initial, healthy and unhealthy by the thresholds.
func (s *Server) healthCheck(ctx context.Context, g *group, t *target) {
	hc := g.cfg.HealthCheck
	port := t.port
	if hc.Port != "traffic-port" {
		port, _ = strconv.Atoi(hc.Port)
	}
	addr := net.JoinHostPort(t.id, strconv.Itoa(port))
	client := &http.Client{Timeout: hc.Timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tick := time.NewTicker(hc.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		paused := s.hcPaused
		s.mu.Unlock()
		if paused {
			continue
		}
		c := probe(ctx, client, hc, addr)
		s.mu.Lock()
		if ctx.Err() == nil {
			t.record(c, hc)
		}
		s.mu.Unlock()
	}
}

func probe(ctx context.Context, client *http.Client, hc HealthCheck, addr string) Check {
	c := Check{At: time.Now()}
	if hc.Protocol == "TCP" {
		conn, err := (&net.Dialer{Timeout: hc.Timeout}).DialContext(ctx, "tcp", addr)
		if err != nil {
			c.Reason = failReason(err)
			return c
		}
		conn.Close()
		c.OK = true
		return c
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+hc.Path, nil)
	if err != nil {
		c.Reason = ReasonFailedHealthChecks
		return c
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := client.Do(req)
	if err != nil {
		c.Reason = failReason(err)
		return c
	}
	resp.Body.Close()
	c.Code = resp.StatusCode
	if c.OK = matches(hc.Matcher, resp.StatusCode); !c.OK {
		c.Reason = ReasonResponseCodeMismatch
	}
	return c
}

func failReason(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonFailedHealthChecks
}

// matches reports whether code is in an ELBv2 matcher: "200", "200-399", "200,202".
func matches(matcher string, code int) bool {
	for _, part := range strings.Split(matcher, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		l, err1 := strconv.Atoi(lo)
		h, err2 := l, error(nil)
		if isRange {
			h, err2 = strconv.Atoi(hi)
		}
		if err1 == nil && err2 == nil && code >= l && code <= h {
			return true
		}
	}
	return false
}

// record applies one check result to the target's state.
func (t *target) record(c Check, hc HealthCheck) {
	if len(t.checks) < 1000 {
		t.checks = append(t.checks, c)
	}
	if c.OK {
		t.passes, t.fails = t.passes+1, 0
	} else {
		t.passes, t.fails = 0, t.fails+1
	}
	switch {
	case c.OK && t.passes >= hc.HealthyThreshold:
		t.health = Health{State: StateHealthy}
	case c.OK:
		if t.health.State == StateInitial {
			t.health = Health{StateInitial, ReasonInitialHealthChecking, descriptions[ReasonInitialHealthChecking]}
		}
	case t.fails >= hc.UnhealthyThreshold || t.health.State == StateUnhealthy:
		t.health = Health{StateUnhealthy, c.Reason, failDescription(c)}
	case t.health.State == StateInitial:
		t.health = Health{StateInitial, ReasonInitialHealthChecking, descriptions[ReasonInitialHealthChecking]}
	}
}

func failDescription(c Check) string {
	if c.Reason == ReasonResponseCodeMismatch {
		return fmt.Sprintf("Health checks failed with these codes: [%d]", c.Code)
	}
	return descriptions[c.Reason]
}
