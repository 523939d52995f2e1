// Package elbv2 is a local AWS ELBv2-compatible endpoint for tests and the demo: the Query
// protocol (Version 2015-12-01) with SigV4-verified requests, target groups with their
// health check settings, targets that it really health-checks over HTTP or TCP on loopback,
// AWS's target states and reasons, the deregistration delay, AWS's error documents, and
// fault switches (throttle, deny, delay). It is the one stand-in for AWS: it only listens
// on, and only health-checks, loopback addresses.
package elbv2

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Namespace is the XML namespace of ELBv2's responses.
const Namespace = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

// APIVersion is the only Version the endpoint answers.
const APIVersion = "2015-12-01"

// Options shape a Server. The zero value listens on 127.0.0.1 on a free port, in region
// eu-west-1, account 123456789012, with the test credentials below.
type Options struct {
	Addr            string // loopback host:port; default 127.0.0.1:0
	Region          string
	Account         string
	AccessKeyID     string
	SecretAccessKey string
}

// Test credentials of a Server with zero Options.
const (
	DefaultAccessKeyID     = "AKIALBKITTESTKEY0001"
	DefaultSecretAccessKey = "lbkit-test-secret-never-a-real-one"
)

// Server is a running endpoint.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	opts Options
	ln   net.Listener
	srv  *http.Server
	seq  atomic.Int64

	mu       sync.Mutex
	groups   map[string]*group // by ARN
	order    []string          // ARNs in creation order
	throttle int               // answer the next throttle calls with Throttling
	deny     bool
	expired  bool // session tokens count as expired
	delay    time.Duration
	hcPaused bool           // health checks hold still (targets keep their state)
	calls    map[string]int // per action, every call received
	refused  map[string]int // per error code sent
	closed   bool
}

// Start starts an endpoint; Close stops it and every health checker.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Region == "" {
		opts.Region = "eu-west-1"
	}
	if opts.Account == "" {
		opts.Account = "123456789012"
	}
	if opts.AccessKeyID == "" {
		opts.AccessKeyID, opts.SecretAccessKey = DefaultAccessKeyID, DefaultSecretAccessKey
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("elbv2: listen address %q: %w", opts.Addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("elbv2: listen address %q is not a loopback IP", opts.Addr)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("elbv2: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), opts: opts, ln: ln,
		groups: map[string]*group{}, calls: map[string]int{}, refused: map[string]int{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Region and Credentials are what a client must sign with.
func (s *Server) Region() string { return s.opts.Region }

// Credentials returns the access key ID and secret the endpoint accepts.
func (s *Server) Credentials() (id, secret string) { return s.opts.AccessKeyID, s.opts.SecretAccessKey }

// Close stops the endpoint and every health checker and drain timer.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, g := range s.groups {
		for _, t := range g.targets {
			t.stop()
		}
	}
	s.mu.Unlock()
	return s.srv.Close()
}

// Throttle answers the next n calls with Throttling (HTTP 400, "Rate exceeded").
func (s *Server) Throttle(n int) { s.mu.Lock(); s.throttle = n; s.mu.Unlock() }

// Deny answers every call with AccessDenied while on.
func (s *Server) Deny(on bool) { s.mu.Lock(); s.deny = on; s.mu.Unlock() }

// ExpireSessionTokens answers every call signed with a session token (temporary
// credentials) with ExpiredToken while on.
func (s *Server) ExpireSessionTokens(on bool) { s.mu.Lock(); s.expired = on; s.mu.Unlock() }

// Delay holds every answer for d (0: none).
func (s *Server) Delay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// PauseHealthChecks holds every target's health checks while on (a check that is due is
// skipped), so that a test can look at a state without racing the check interval, e.g.
// "initial" right after RegisterTargets.
func (s *Server) PauseHealthChecks(on bool) { s.mu.Lock(); s.hcPaused = on; s.mu.Unlock() }

// Calls is the number of calls of action received (refused ones included).
func (s *Server) Calls(action string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls[action] }

// Refused is the number of calls answered with the error code.
func (s *Server) Refused(code string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.refused[code] }

// apiError is an AWS error document.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := fmt.Sprintf("lbkit-%08d", s.seq.Add(1))
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.fail(w, reqID, &apiError{http.StatusBadRequest, "InvalidRequest", "cannot read the request body"})
		return
	}
	form, err := url.ParseQuery(string(body))
	if r.Method == http.MethodGet {
		form, err = r.URL.Query(), nil
	}
	if err != nil {
		s.fail(w, reqID, &apiError{http.StatusBadRequest, "MalformedQueryString", err.Error()})
		return
	}
	action := form.Get("Action")
	s.mu.Lock()
	s.calls[action]++
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if e := s.verify(r, body); e != nil {
		s.fail(w, reqID, e)
		return
	}
	s.mu.Lock()
	var e *apiError
	switch {
	case s.expired && r.Header.Get("X-Amz-Security-Token") != "":
		e = &apiError{http.StatusForbidden, "ExpiredToken", "The security token included in the request is expired"}
	case s.deny:
		e = &apiError{http.StatusForbidden, "AccessDenied", fmt.Sprintf("User: arn:aws:iam::%s:user/lbkit-test is not authorized to perform: %s:%s", s.opts.Account, Service, action)}
	case s.throttle > 0:
		s.throttle--
		e = &apiError{http.StatusBadRequest, "Throttling", "Rate exceeded"}
	case form.Get("Version") != APIVersion:
		e = &apiError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("Version %q is not supported (want %s)", form.Get("Version"), APIVersion)}
	}
	s.mu.Unlock()
	if e != nil {
		s.fail(w, reqID, e)
		return
	}
	var result any
	switch action {
	case "DescribeTargetGroups":
		result, e = s.describeTargetGroups(form)
	case "DescribeTargetGroupAttributes":
		result, e = s.describeTargetGroupAttributes(form)
	case "DescribeTargetHealth":
		result, e = s.describeTargetHealth(form)
	case "RegisterTargets":
		result, e = s.registerTargets(form)
	case "DeregisterTargets":
		result, e = s.deregisterTargets(form)
	default:
		e = &apiError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("The action %s is not valid for this endpoint.", action)}
	}
	if e != nil {
		s.fail(w, reqID, e)
		return
	}
	inner, err := xml.Marshal(result)
	if err != nil {
		s.fail(w, reqID, &apiError{http.StatusInternalServerError, "InternalFailure", err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	fmt.Fprintf(w, `<%[1]sResponse xmlns="%[2]s">%[3]s<ResponseMetadata><RequestId>%[4]s</RequestId></ResponseMetadata></%[1]sResponse>`,
		action, Namespace, inner, reqID)
}

type errorDoc struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

func (s *Server) fail(w http.ResponseWriter, reqID string, e *apiError) {
	s.mu.Lock()
	s.refused[e.code]++
	s.mu.Unlock()
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	b, _ := xml.Marshal(errorDoc{Xmlns: Namespace, Type: typ, Code: e.code, Message: e.message, RequestID: reqID})
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// members reads a Query-protocol list: prefix.member.1, prefix.member.2, ...
func members(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+".member."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v...)
	}
}

// targetRefs reads Targets.member.N.Id and .Port.
func targetRefs(form url.Values) ([]ref, *apiError) {
	var out []ref
	for i := 1; ; i++ {
		p := "Targets.member." + strconv.Itoa(i)
		id := form.Get(p + ".Id")
		if id == "" {
			return out, nil
		}
		r := ref{id: id}
		if ps := form.Get(p + ".Port"); ps != "" {
			port, err := strconv.Atoi(ps)
			if err != nil || port < 1 || port > 65535 {
				return nil, &apiError{http.StatusBadRequest, "ValidationError", fmt.Sprintf("Port %q of target %s must be 1-65535", ps, id)}
			}
			r.port = port
		}
		out = append(out, r)
	}
}

var errClosed = errors.New("elbv2: server closed")
