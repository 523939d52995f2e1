package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/testenv"
)

// buildLBAdapter builds ./cmd/lbadapter into dir.
func buildLBAdapter(t *testing.T, dir string) string {
	t.Helper()
	bin, err := testenv.BuildCommand(context.Background(), dir, "lbadapter")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildBoth builds lbagent and lbadapter into one directory of the test.
func buildBoth(t *testing.T) (lbagent, lbadapter string) {
	t.Helper()
	bins := t.TempDir()
	lbagent, err := testenv.BuildLBAgent(context.Background(), bins)
	if err != nil {
		t.Fatal(err)
	}
	return lbagent, buildLBAdapter(t, bins)
}

// result of one lbadapter run.
type result struct {
	code           int
	stdout, stderr string
}

func runLBAdapter(ctx context.Context, bin string, args ...string) result {
	return runLBAdapterEnv(ctx, nil, bin, args...)
}

// runLBAdapterEnv runs lbadapter with env added to the test's environment.
func runLBAdapterEnv(ctx context.Context, env []string, bin string, args ...string) result {
	return runLBAdapterWith(ctx, env, "", bin, args...)
}

// runLBAdapterWith runs lbadapter with env added to the test's environment and stdin as its
// input (an operator's answers).
func runLBAdapterWith(ctx context.Context, env []string, stdin, bin string, args ...string) result {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return result{code, out.String(), errb.String()}
}

// conn is a client connection through HAProxy's frontend.
type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{Conn: c, r: bufio.NewReader(c)}
}

// echo sends a line and expects it back: the connection still flows end to end.
func (c *conn) echo(line string) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != line {
		return fmt.Errorf("echo: got %q; want %q", got, line)
	}
	return nil
}

// dialTo opens connections through the frontend until one lands on node n (round robin
// reaches every node within len(nodes) tries) and returns it, with the others left open.
func dialTo(t *testing.T, ctx context.Context, c *testenv.Cluster, n *testenv.ClusterNode) *conn {
	t.Helper()
	for i := 0; i < 2*len(c.Nodes); i++ {
		before := n.Msg.Accepted()
		cn := dial(t, c.Frontend)
		if err := cn.echo("hello"); err != nil {
			t.Fatal(err)
		}
		if n.Msg.Accepted() > before {
			return cn
		}
	}
	t.Fatalf("no connection through %s reached %s", c.Frontend, n.Name)
	return nil
}

func statusIs(want string) func(string) bool { return func(s string) bool { return s == want } }

func statusPrefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}
