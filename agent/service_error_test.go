package agent

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/xroad-lb/lbkit/agent/agentcheck"
	"github.com/xroad-lb/lbkit/testenv"
)

// TestServiceErrorNamesTheServiceOnce: a service's error reaches the daemon's "stopping" line
// and its exit with the service's name once (issue 12: "agent-check: agent-check: listener
// closed").
func TestServiceErrorNamesTheServiceOnce(t *testing.T) {
	node := testenv.NewNode(t, testenv.NodeOptions{HealthPort: -1})
	cfg, err := LoadConfig(Flags{XRoadDir: node.XRoadDir, OCSPCacheDir: node.OCSPDir, AdminListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := agentcheck.New(agentcheck.Config{Listen: "127.0.0.1:0"}, a.Store(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(Component{Name: "agent-check", Run: func(ctx context.Context) error {
		ln.Close() // the listener goes away under the server, not through ctx
		return srv.Serve(ctx, ln)
	}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	if err := <-done; err == nil || strings.Count(err.Error(), "agent-check") != 1 || !strings.HasPrefix(err.Error(), "agent-check: ") {
		t.Errorf("Run returned %v; want one error naming the agent-check once", err)
	}
}
