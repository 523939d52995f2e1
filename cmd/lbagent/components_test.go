package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/xroad-lb/lbkit/agent"
	"github.com/xroad-lb/lbkit/testenv"
)

// startDaemon builds the daemon as lbagent run does (store, then every enabled part) and runs
// it until the test ends.
func startDaemon(t *testing.T, n *testenv.Node) *agent.Agent {
	t.Helper()
	cfg, err := agent.LoadConfig(agent.Flags{XRoadDir: n.XRoadDir, OCSPCacheDir: n.OCSPDir, AdminListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(io.Discard)
	a, err := agent.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildComponents(a, log); err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon stopped with %v", err)
		}
	})
	return a
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestLBAnswersTheAgentLine: /lb on the health port answers the agent-check line whether the
// agent-check port listens or not (bug 4: with listen = off it gave the plain health answer,
// which a Lua script misreads).
func TestLBAnswersTheAgentLine(t *testing.T) {
	for _, listen := range []string{"off", freeAddr(t)} {
		t.Run(listen, func(t *testing.T) {
			n := testenv.NewNode(t, testenv.NodeOptions{LBAgentINI: "[agent-check]\nlisten = " + listen + "\n"})
			a := startDaemon(t, n)
			get := func() (int, string, string) {
				t.Helper()
				resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + a.HealthAddr() + "/lb")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
			}
			// No database: the node is down, and the line says so with the reason.
			if code, ctype, body := get(); code != 200 || !strings.HasPrefix(ctype, "text/plain") || !strings.HasPrefix(body, "down #") {
				t.Errorf("/lb: got %d %q %q; want 200 text/plain and a \"down #<reason>\" line", code, ctype, body)
			}
			if _, body := getBody(t, "http://"+a.AdminAddr()+"/status"); !strings.Contains(body, `"listen": "`+listen+`"`) {
				t.Errorf("admin /status does not show listen %q:\n%s", listen, body)
			}
			if _, err := a.Store().SetMaintenance(true); err != nil {
				t.Fatal(err)
			}
			if code, _, body := get(); code != 200 || body != "drain\n" {
				t.Errorf("/lb in maintenance: got %d %q; want 200 \"drain\\n\"", code, body)
			}
		})
	}
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
