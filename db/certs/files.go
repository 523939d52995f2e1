package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/xroad-lb/lbkit/internal/atomicfile"
)

// WriteCA creates a CA and writes ca.crt and ca.key into dir. It returns the paths.
func WriteCA(dir string, opts Options) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if err := checkFree(opts.Force, certPath, keyPath); err != nil {
		return "", "", err
	}
	ca, err := NewCA(opts)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	if err := writePair(ca, certPath, keyPath, opts); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// WriteNode issues a key and certificate for node name with the CA in caDir and writes
// server.crt, server.key and a copy of ca.crt into outDir: the three files the guide copies
// to /etc/xroad/postgresql on that node.
func WriteNode(caDir, outDir, name string, opts Options) ([]string, error) {
	ca, err := LoadPair(filepath.Join(caDir, CACertFile), filepath.Join(caDir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(outDir, NodeCertFile), filepath.Join(outDir, NodeKeyFile)
	caCopy := filepath.Join(outDir, CACertFile)
	same, err := sameFile(caCopy, filepath.Join(caDir, CACertFile))
	if err != nil {
		return nil, err
	}
	check := []string{certPath, keyPath}
	if !same {
		check = append(check, caCopy)
	}
	if err := checkFree(opts.Force, check...); err != nil {
		return nil, err
	}
	node, err := NewNode(ca, name, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", outDir, err)
	}
	if err := writePair(node, certPath, keyPath, opts); err != nil {
		return nil, err
	}
	written := []string{certPath, keyPath}
	if !same {
		if err := writeFile(caCopy, certPEM(ca.Cert), 0o400, opts); err != nil {
			return nil, err
		}
		written = append(written, caCopy)
	}
	return written, nil
}

// LoadCert reads a PEM certificate.
func LoadCert(certPath string) (*x509.Certificate, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	block, _ := pem.Decode(cb)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	return cert, nil
}

// LoadPair reads a PEM certificate and a PEM (PKCS#8, SEC 1 or PKCS#1) private key.
func LoadPair(certPath, keyPath string) (*Pair, error) {
	cert, err := LoadCert(certPath)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	kblock, _ := pem.Decode(kb)
	if kblock == nil {
		return nil, fmt.Errorf("%s: no PEM private key", keyPath)
	}
	key, err := parseKey(kblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return &Pair{Cert: cert, Key: key}, nil
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("unsupported private key type")
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported or malformed private key")
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// writePair writes the certificate (0600) and the PKCS#8 key (0400).
func writePair(p *Pair, certPath, keyPath string, opts Options) error {
	der, err := x509.MarshalPKCS8PrivateKey(p.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeFile(keyPath, keyPEM, 0o400, opts); err != nil {
		return err
	}
	return writeFile(certPath, certPEM(p.Cert), 0o600, opts)
}

// writeFile creates path with mode, replacing an existing file only with opts.Force. The
// content goes to a new file in the same directory that is renamed into place, so a reader
// never sees a half-written key and the mode is never wider than asked.
func writeFile(path string, data []byte, mode os.FileMode, opts Options) error {
	if err := checkFree(opts.Force, path); err != nil {
		return err
	}
	var owner []atomicfile.Option
	if opts.Chown {
		owner = append(owner, atomicfile.Owner(opts.UID, opts.GID))
	}
	return atomicfile.WriteFile(path, data, mode, owner...)
}

func checkFree(force bool, paths ...string) error {
	if force {
		return nil
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s: %w", p, ErrExists)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}
