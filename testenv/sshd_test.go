package testenv

import (
	"net"
	"os"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestSSHDLoginAndKill(t *testing.T) {
	s := NewSSHD(t, SSHDOptions{})
	key, err := os.ReadFile(s.ClientKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(s.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk}
	c, err := ssh.Dial("tcp", s.Addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v\n%s", s.Addr, err, s.Log())
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		t.Fatalf("sftp subsystem: %v", err)
	}

	// A wrong host key must be refused by the known_hosts file the server wrote.
	other, err := writeKeyPair(t.TempDir()+"/k", "x")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := net.ResolveTCPAddr("tcp", s.Addr)
	if err := hk(s.Addr, addr, other); err == nil {
		t.Errorf("known_hosts accepted a foreign key; want refusal")
	}

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	// Killing cuts the open connection too.
	if err := c.Wait(); err == nil {
		t.Errorf("connection still open after Kill")
	}
	if got := s.PID(); got != 0 {
		t.Errorf("PID after Kill = %d; want 0", got)
	}
	if bannerOK(t.Context(), s.Addr) {
		t.Errorf("sshd still answers on %s after Kill", s.Addr)
	}
}
