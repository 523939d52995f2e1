package healthport

import (
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/valyala/fasthttp"

	"github.com/xroad-lb/lbkit/agent/redact"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/verdict"
)

func newStore() *verdict.Store {
	return verdict.NewStoreWithClock("secondary", []check.Spec{
		{Name: "Global conf validity"}, {Name: "Server conf database status"},
		{Name: "Config sync status", Severity: check.Warning},
	}, clockwork.NewFakeClockAt(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)))
}

func do(s *Server, method, uri string) (int, string, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	s.Handle(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body()), string(ctx.Response.Header.ContentType())
}

func TestPlainAnswers(t *testing.T) {
	st := newStore()
	s := New(st, Options{LBLine: func(peer string) []byte { return []byte("up\n") }})
	pass := check.Result{Status: check.StatusPass, Started: time.Now()}
	tests := []struct {
		name     string
		set      func()
		wantCode int
		wantBody string
	}{
		{"pending", func() {}, 500, "Health check not yet completed for: Global conf validity\n"},
		{"second check pending", func() { r := pass; r.Name = "Global conf validity"; st.SetResult(0, r) }, 500,
			"Health check not yet completed for: Server conf database status\n"},
		{"healthy, warning does not count", func() {
			r := pass
			r.Name = "Server conf database status"
			st.SetResult(1, r)
			st.SetResult(2, check.Result{Name: "Config sync status", Severity: check.Warning, Status: check.StatusWarn, Message: "Config sync is paused"})
		}, 200, ""},
		{"failing", func() {
			st.SetResult(1, check.Result{Name: "Server conf database status", Status: check.StatusFail, Message: "ServerConf is not available"})
		}, 500, "ServerConf is not available\n"},
		{"maintenance wins", func() { st.SetMaintenance(true) }, 503, "Health check interface is in maintenance mode.\n"},
	}
	for _, tt := range tests {
		tt.set()
		for _, m := range []string{"GET", "OPTIONS", "POST"} {
			for _, p := range []string{"/", "/x/y?z=1", "/Status", "/lbx"} {
				code, body, _ := do(s, m, p)
				if code != tt.wantCode || body != tt.wantBody {
					t.Errorf("%s: %s %s: got %d %q; want %d %q", tt.name, m, p, code, body, tt.wantCode, tt.wantBody)
				}
			}
		}
	}
}

func TestReservedPaths(t *testing.T) {
	st := newStore()
	var gotPeer string
	s := New(st, Options{
		LBLine:     func(peer string) []byte { gotPeer = peer; return []byte("down #ServerConf is not available\n") },
		Components: map[string]func() any{"sync": func() any { return map[string]bool{"paused": true} }},
	})
	if code, body, ct := do(s, "GET", "/lb"); code != 200 || body != "down #ServerConf is not available\n" || !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/lb: got %d %q %q", code, body, ct)
	}
	if gotPeer != "0.0.0.0" {
		t.Errorf("/lb peer %q; want the client's address (0.0.0.0 for an in-memory request)", gotPeer)
	}
	for _, m := range []string{"HEAD", "POST", "DELETE"} { // only a GET may take a "ready"
		gotPeer = "unset"
		do(s, m, "/lb")
		if gotPeer != "" {
			t.Errorf("%s /lb: peer %q; want \"\" (neither told drain nor given ready)", m, gotPeer)
		}
	}
	code, body, ct := do(s, "GET", "/status?verbose=1")
	if code != 503 || ct != "application/health+json" {
		t.Errorf("/status: got %d %q; want 503 application/health+json while checks are pending", code, ct)
	}
	for _, want := range []string{`"status": "fail"`, `"role": "secondary"`, `"Config sync status"`, `"affectsHealth": false`, `"paused": true`} {
		if !strings.Contains(body, want) {
			t.Errorf("/status: want %s in\n%s", want, body)
		}
	}
	// /metrics is not served without a gatherer: the path gets the plain answer.
	if code, _, _ := do(s, "GET", "/metrics"); code != 500 {
		t.Errorf("/metrics without gatherer: got %d; want the plain 500", code)
	}
}

// TestStatusDetailsOnlyWithToken: the public /status leaves out causes and the components'
// addresses and errors; the token (or the admin port) shows them; secrets are masked always.
func TestStatusDetailsOnlyWithToken(t *testing.T) {
	st := newStore()
	st.SetResult(0, check.Result{Name: "Global conf validity", Status: check.StatusFail, Started: time.Now(),
		Message: "ServerConf is not available", Detail: "connect host=db.internal user=serverconf password=' s3cret pw'"})
	var red redact.Redactor
	red.Add(" s3cret pw")
	s := New(st, Options{Redactor: &red, StatusToken: "0123456789abcdef0123",
		Components: map[string]func() any{"sync": func() any {
			return map[string]any{"paused": false, "age_seconds": 1.5, "primary": "10.0.0.11:22", "last_error": "dial 10.0.0.11"}
		}}})
	_, public, _ := do(s, "GET", "/status")
	for _, hidden := range []string{"db.internal", "10.0.0.11", "s3cret", "detail", "last_error"} {
		if strings.Contains(public, hidden) {
			t.Errorf("public /status shows %q:\n%s", hidden, public)
		}
	}
	for _, shown := range []string{"ServerConf is not available", `"age_seconds": 1.5`, `"paused": false`} {
		if !strings.Contains(public, shown) {
			t.Errorf("public /status lacks %s:\n%s", shown, public)
		}
	}
	full := func(auth string) string {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/status")
		ctx.Request.Header.Set("Authorization", auth)
		s.Handle(&ctx)
		return string(ctx.Response.Body())
	}
	if body := full("Bearer 0123456789abcdef0123"); !strings.Contains(body, "db.internal") || !strings.Contains(body, "10.0.0.11") ||
		strings.Contains(body, "s3cret") || !strings.Contains(body, redact.Mask) {
		t.Errorf("/status with the token: want the details, the password masked:\n%s", body)
	}
	if body := full("Bearer wrong"); strings.Contains(body, "db.internal") {
		t.Errorf("/status with a wrong token shows details:\n%s", body)
	}
}

func TestStatusAgeAndDuration(t *testing.T) {
	st := newStore()
	started := time.Date(2026, 11, 25, 11, 59, 50, 0, time.UTC)
	st.SetResult(1, check.Result{Name: "Server conf database status", Status: check.StatusFail, Message: "ServerConf is not available",
		Detail: "connect: refused", Started: started, Duration: 1500 * time.Millisecond, Runs: 3, Failures: 2})
	doc := BuildStatus(st.Load(), started.Add(10*time.Second), nil, true)
	got := doc.Checks["Server conf database status"][0]
	if got.ObservedValue != 1500 || got.AgeSeconds != 8.5 || got.Detail != "connect: refused" || got.Runs != 3 || got.Failures != 2 ||
		got.ComponentID != "server-conf-database-status" || !got.AffectsHealth {
		t.Errorf("got %+v", got)
	}
}

// BenchmarkProbe measures one health probe through the handler (no network): it must not
// allocate.
func BenchmarkProbe(b *testing.B) {
	st := newStore()
	for i, name := range []string{"Global conf validity", "Server conf database status"} {
		st.SetResult(i, check.Result{Name: name, Status: check.StatusPass})
	}
	s := New(st, Options{})
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("OPTIONS")
	ctx.Request.SetRequestURI("/")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		s.Handle(&ctx)
	}
	if code := ctx.Response.StatusCode(); code != 200 {
		b.Fatalf("got %d; want 200", code)
	}
}
