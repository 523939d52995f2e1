package elbv2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestMatches(t *testing.T) {
	for _, tt := range []struct {
		matcher string
		code    int
		want    bool
	}{
		{"200", 200, true}, {"200", 503, false}, {"200-399", 302, true}, {"200-399", 500, false},
		{"200,202", 202, true}, {"200,202", 201, false}, {"200-299,404", 404, true}, {"", 200, false},
	} {
		if got := matches(tt.matcher, tt.code); got != tt.want {
			t.Errorf("matches(%q, %d) = %v; want %v", tt.matcher, tt.code, got, tt.want)
		}
	}
}

// TestRecord: the state machine of one target under the thresholds (healthy 2, unhealthy 3).
func TestRecord(t *testing.T) {
	hc := HealthCheck{HealthyThreshold: 2, UnhealthyThreshold: 3}
	pass := Check{OK: true, Code: 200}
	fail := Check{Code: 503, Reason: ReasonResponseCodeMismatch}
	tg := &target{health: Health{StateInitial, ReasonRegistrationInProgress, ""}}
	steps := []struct {
		c          Check
		state, why string
	}{
		{pass, StateInitial, ReasonInitialHealthChecking},
		{pass, StateHealthy, ""},
		{fail, StateHealthy, ""},
		{fail, StateHealthy, ""},
		{fail, StateUnhealthy, ReasonResponseCodeMismatch},
		{pass, StateUnhealthy, ReasonResponseCodeMismatch},
		{Check{Reason: ReasonTimeout}, StateUnhealthy, ReasonTimeout},
		{pass, StateUnhealthy, ReasonTimeout},
		{pass, StateHealthy, ""},
	}
	for i, st := range steps {
		tg.record(st.c, hc)
		if tg.health.State != st.state || tg.health.Reason != st.why {
			t.Fatalf("step %d: %+v; want %s (%s)", i+1, tg.health, st.state, st.why)
		}
	}
	if tg.health.Description != "" {
		t.Errorf("healthy with description %q", tg.health.Description)
	}
}

// call signs a Query-protocol request with secret (the SDK's signer), optionally changes the
// body after signing, and returns the HTTP status and the error code of the answer.
func call(t *testing.T, s *Server, form url.Values, secret string, tamper func(string) string) (int, string) {
	t.Helper()
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	id, _ := s.Credentials()
	if secret != "" {
		err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), Service, s.Region(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		changed := tamper(body)
		req.Body, req.ContentLength = io.NopCloser(strings.NewReader(changed)), int64(len(changed))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc errorDoc
	b, _ := io.ReadAll(resp.Body)
	_ = xml.Unmarshal(b, &doc)
	return resp.StatusCode, doc.Code
}

func TestSignatureAndErrors(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	arn, err := s.CreateTargetGroup(TargetGroup{Name: "g", Port: 5500})
	if err != nil {
		t.Fatal(err)
	}
	_, secret := s.Credentials()
	describe := url.Values{"Action": {"DescribeTargetHealth"}, "Version": {APIVersion}, "TargetGroupArn": {arn}}
	tests := []struct {
		name   string
		form   url.Values
		secret string
		tamper func(string) string
		status int
		code   string
	}{
		{"signed", describe, secret, nil, 200, ""},
		{"unsigned", describe, "", nil, 403, "MissingAuthenticationToken"},
		{"wrong secret", describe, "nope", nil, 403, "SignatureDoesNotMatch"},
		{"body changed after signing", describe, secret, func(b string) string { return strings.Replace(b, "TargetGroupArn=", "TargetGroupArn=x", 1) }, 403, "SignatureDoesNotMatch"},
		{"no such group", url.Values{"Action": {"DescribeTargetHealth"}, "Version": {APIVersion}, "TargetGroupArn": {arn + "0"}}, secret, nil, 400, "TargetGroupNotFound"},
		{"other version", url.Values{"Action": {"DescribeTargetHealth"}, "Version": {"2012-06-01"}, "TargetGroupArn": {arn}}, secret, nil, 400, "InvalidAction"},
		{"non-loopback target", url.Values{"Action": {"RegisterTargets"}, "Version": {APIVersion}, "TargetGroupArn": {arn},
			"Targets.member.1.Id": {"10.0.0.1"}}, secret, nil, 400, "InvalidTarget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := call(t, s, tt.form, tt.secret, tt.tamper)
			if status != tt.status || code != tt.code {
				t.Errorf("got %d %q; want %d %q", status, code, tt.status, tt.code)
			}
		})
	}
	s.Throttle(1)
	if status, code := call(t, s, describe, secret, nil); status != 400 || code != "Throttling" {
		t.Errorf("throttled: %d %q", status, code)
	}
	if status, _ := call(t, s, describe, secret, nil); status != 200 {
		t.Errorf("after the throttled call: %d; want 200", status)
	}
}

func TestListensOnLoopbackOnly(t *testing.T) {
	if _, err := Start(Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("Start on 0.0.0.0 succeeded; want a refusal")
	}
}
