package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestWriteCAAndNode(t *testing.T) {
	for _, tt := range []struct {
		kt    KeyType
		check func(any) bool
	}{
		{"", func(k any) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve == elliptic.P256() }},
		{ECDSAP384, func(k any) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve == elliptic.P384() }},
		{RSA3072, func(k any) bool { r, ok := k.(*rsa.PublicKey); return ok && r.N.BitLen() == 3072 }},
	} {
		t.Run(string(tt.kt), func(t *testing.T) {
			dir := t.TempDir()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			opts := Options{KeyType: tt.kt, Clock: clockwork.NewFakeClockAt(now)}
			if _, _, err := WriteCA(dir, opts); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "replica1")
			if _, err := WriteNode(dir, out, "replica1", opts); err != nil {
				t.Fatal(err)
			}
			ca, err := LoadPair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			node, err := LoadPair(filepath.Join(out, NodeCertFile), filepath.Join(out, NodeKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if got := node.Cert.Subject.CommonName; got != "replica1" {
				t.Errorf("CN: got %q; want replica1", got)
			}
			if !tt.check(node.Cert.PublicKey) || !tt.check(ca.Cert.PublicKey) {
				t.Errorf("key type: got %T; want %s", node.Cert.PublicKey, tt.kt)
			}
			if got, want := node.Cert.NotAfter, now.Add(DefaultValidity); !got.Equal(want) {
				t.Errorf("NotAfter: got %v; want %v", got, want)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
				if _, err := node.Cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("verify for %v: %v", usage, err)
				}
			}
			for path, want := range map[string]os.FileMode{
				filepath.Join(dir, CAKeyFile): 0o400, filepath.Join(dir, CACertFile): 0o600,
				filepath.Join(out, NodeKeyFile): 0o400, filepath.Join(out, NodeCertFile): 0o600, filepath.Join(out, CACertFile): 0o400,
			} {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("%s: mode %o; want %o", filepath.Base(path), got, want)
				}
			}
		})
	}
}

func TestNoOverwriteWithoutForce(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := WriteCA(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if _, _, err := WriteCA(dir, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second WriteCA: got %v; want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if string(before) != string(after) {
		t.Fatal("the refused run changed ca.key")
	}
	if _, _, err := WriteCA(dir, Options{Force: true}); err != nil {
		t.Fatalf("WriteCA with Force: %v", err)
	}
	forced, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if string(forced) == string(before) {
		t.Fatal("Force did not replace ca.key")
	}
	if _, err := WriteNode(dir, dir, "n1", Options{}); err != nil {
		t.Fatalf("node into the CA directory: %v", err)
	}
	if _, err := WriteNode(dir, dir, "n1", Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second WriteNode: got %v; want ErrExists", err)
	}
}

func TestParseKeyType(t *testing.T) {
	if _, err := ParseKeyType("dsa"); err == nil {
		t.Error("ParseKeyType(dsa): want an error")
	}
	if k, err := ParseKeyType("rsa-3072"); err != nil || k != RSA3072 {
		t.Errorf("got %v, %v; want rsa-3072", k, err)
	}
}

// TestNodeNameIsARoleName: a node name is the certificate's CN, the replication user on the
// primary and a directory under the CA's; names that cannot be all three are refused before
// anything is written (issue 12, bug 8: "bad name/../x" was accepted).
func TestNodeNameIsARoleName(t *testing.T) {
	ca, err := NewCA(Options{})
	if err != nil {
		t.Fatal(err)
	}
	long := "n"
	for len(long) < 64 {
		long += "n"
	}
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"replica1", true}, {"ss-2", true}, {"node_3", true}, {"ss2.example.org", true}, {long[:63], true},
		{"", false}, {"bad name/../x", false}, {"..", false}, {"a/b", false}, {"x y", false},
		{"-x", false}, {".x", false}, {"a'b", false}, {`a"b`, false}, {"pg_monitor", false},
		{"public", false}, {"PUBLIC", false}, {"none", false}, {"current_user", false}, {long, false},
		{"Replica1", false}, {"ä", false},
	} {
		err := CheckNodeName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckNodeName(%q) = %v; want ok %v", tt.name, err, tt.ok)
		}
		_, nerr := NewNode(ca, tt.name, Options{})
		if (nerr == nil) != tt.ok {
			t.Errorf("NewNode(%q) = %v; want ok %v", tt.name, nerr, tt.ok)
		}
	}
}
