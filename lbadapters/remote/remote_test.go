package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/xroad-lb/lbkit/testenv"
)

// TestRun against a real OpenSSH server: output and exit codes come back; a host key that
// known_hosts does not list, or lists differently, is refused before authenticating.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sshd")
	}
	s := testenv.NewSSHD(t, testenv.SSHDOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := Options{User: s.User, Addr: s.Addr, Identity: s.ClientKeyPath, KnownHosts: s.KnownHostsPath}
	c, err := Dial(ctx, o)
	if err != nil {
		t.Fatalf("Dial: %v\n%s", err, s.Log())
	}
	defer c.Close()
	var out, errb bytes.Buffer
	if err := c.Run(ctx, "echo out; echo err >&2", &out, &errb); err != nil || out.String() != "out\n" || errb.String() != "err\n" {
		t.Errorf("Run: %v, stdout %q, stderr %q", err, out.String(), errb.String())
	}
	err = c.Run(ctx, "exit 100", &out, &errb)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 100 || err.Error() != `"exit 100" exited with status 100` {
		t.Errorf("exit 100: %v; want an ExitError with code 100", err)
	}
	// The connection serves further sessions.
	out.Reset()
	if err := c.Run(ctx, "echo again", &out, &errb); err != nil || out.String() != "again\n" {
		t.Errorf("second session: %v %q", err, out.String())
	}

	dir := t.TempDir()
	empty := filepath.Join(dir, "empty_known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong_known_hosts")
	if err := os.WriteFile(wrong, []byte(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, want string }{
		{empty, "does not list"},
		{wrong, "line 1 holds another"},
	} {
		bad := o
		bad.KnownHosts = tt.file
		_, err := Dial(ctx, bad)
		if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(s.HostKey)) {
			t.Errorf("known_hosts %s: %v; want ErrHostKey with %q and the presented key's fingerprint", filepath.Base(tt.file), err, tt.want)
		}
	}
	missing := o
	missing.KnownHosts = filepath.Join(dir, "none")
	if _, err := Dial(ctx, missing); err == nil || !strings.Contains(err.Error(), "ssh-keyscan") {
		t.Errorf("missing known_hosts: %v; want an error saying how to add the keys", err)
	}
	noKey := o
	noKey.Identity = ""

	// The key from a real ssh-agent, no identity file.
	agentBin, addBin := testenv.Require(t, "ssh-agent"), testenv.Require(t, "ssh-add")
	sock := filepath.Join(dir, "agent.sock")
	agentCmd := exec.Command(agentBin, "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = agentCmd.Process.Kill(); _ = agentCmd.Wait() }()
	var added error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		add := exec.Command(addBin, s.ClientKeyPath)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		var b []byte
		if b, added = add.CombinedOutput(); added == nil {
			break
		}
		added = fmt.Errorf("%w: %s", added, b)
	}
	if added != nil {
		t.Fatalf("ssh-add: %v", added)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	ac, err := Dial(ctx, noKey)
	if err != nil {
		t.Fatalf("Dial with the agent's key: %v", err)
	}
	out.Reset()
	if err := ac.Run(ctx, "echo agent", &out, &errb); err != nil || out.String() != "agent\n" {
		t.Errorf("Run through the agent's key: %v %q", err, out.String())
	}
	ac.Close()

	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := Dial(ctx, noKey); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("no identity, no agent: %v; want a clear error", err)
	}
}
