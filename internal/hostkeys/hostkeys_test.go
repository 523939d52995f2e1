package hostkeys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestAlgorithms(t *testing.T) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _ := ssh.NewPublicKey(ed.Public())
	rsaPub, _ := ssh.NewPublicKey(&rk.PublicKey)
	file := filepath.Join(t.TempDir(), "known_hosts")
	lines := knownhosts.Line([]string{knownhosts.Normalize("127.0.0.2:2222")}, rsaPub) + "\n" +
		knownhosts.Line([]string{knownhosts.Normalize("127.0.0.2:2222")}, edPub) + "\n"
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.2:2222", []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA, ssh.KeyAlgoED25519}},
		{"127.0.0.3:2222", nil}, // unknown host: let the server offer, the callback refuses
	} {
		if got := Algorithms(cb, tt.addr); !slices.Equal(got, tt.want) {
			t.Errorf("Algorithms(%s) = %q; want %q", tt.addr, got, tt.want)
		}
	}
}

// TestCheck: the listed key passes; another key for a listed host is rejected naming the
// line; a host not listed is rejected without one; a broken callback's error comes back.
func TestCheck(t *testing.T) {
	newKey := func() ssh.PublicKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := ssh.NewPublicKey(k.Public())
		return p
	}
	known, other := newKey(), newKey()
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(file, []byte(knownhosts.Line([]string{knownhosts.Normalize("127.0.0.2:22")}, known)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 22}
	if r, err := Check(cb, "127.0.0.2:22", remote, known); r != nil || err != nil {
		t.Errorf("the listed key: %+v, %v; want accepted", r, err)
	}
	r, err := Check(cb, "127.0.0.2:22", remote, other)
	if err != nil || r == nil || r.Listed == nil || r.Listed.Filename != file || r.Listed.Line != 1 || r.Fingerprint != ssh.FingerprintSHA256(other) {
		t.Errorf("another key: %+v, %v; want rejected, listed at %s line 1", r, err, file)
	}
	r, err = Check(cb, "127.0.0.3:22", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3), Port: 22}, other)
	if err != nil || r == nil || r.Listed != nil {
		t.Errorf("an unknown host: %+v, %v; want rejected, not listed", r, err)
	}
	broken := errors.New("broken")
	if r, err := Check(func(string, net.Addr, ssh.PublicKey) error { return broken }, "h", remote, known); r != nil || !errors.Is(err, broken) {
		t.Errorf("a failing callback: %+v, %v; want its error", r, err)
	}
}
