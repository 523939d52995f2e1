package hostkeys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
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
