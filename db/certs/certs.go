// Package certs creates the CA and the per-node keys and certificates that PostgreSQL
// instances of a cluster use for TLS and certificate authentication of replication.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
)

// KeyType names a key algorithm.
type KeyType string

// Supported key types. ECDSA P-256 is the default: small, fast and FIPS 140 approved.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA3072   KeyType = "rsa-3072"
)

// DefaultValidity is the guide's 7300 days (20 years).
const DefaultValidity = 7300 * 24 * time.Hour

// File names inside an output directory. A node directory holds what the guide copies to
// /etc/xroad/postgresql on each node.
const (
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key"
	NodeCertFile = "server.crt"
	NodeKeyFile  = "server.key"
)

// ErrExists is returned when an output file exists and Force is not set.
var ErrExists = errors.New("file exists (use --force to overwrite)")

// Options shape a key and certificate. The zero value is ECDSA P-256, 20 years,
// organization "cluster".
type Options struct {
	KeyType      KeyType
	Validity     time.Duration
	Organization string
	Force        bool // overwrite existing files
	// Chown gives the written files to UID:GID (PostgreSQL reads a key only when it owns it
	// or when root owns it).
	Chown    bool
	UID, GID int
	Clock    clockwork.Clock // for tests; default the real clock
}

func (o Options) withDefaults() Options {
	if o.KeyType == "" {
		o.KeyType = ECDSAP256
	}
	if o.Validity <= 0 {
		o.Validity = DefaultValidity
	}
	if o.Organization == "" {
		o.Organization = "cluster"
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	return o
}

// ParseKeyType checks a key type name.
func ParseKeyType(s string) (KeyType, error) {
	switch k := KeyType(s); k {
	case ECDSAP256, ECDSAP384, RSA3072:
		return k, nil
	}
	return "", fmt.Errorf("unknown key type %q (want %s, %s or %s)", s, ECDSAP256, ECDSAP384, RSA3072)
}

func newKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// Pair is a certificate with its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA returns a self-signed CA certificate (CN "CA") and its key.
func NewCA(opts Options) (*Pair, error) {
	opts = opts.withDefaults()
	key, err := newKey(opts.KeyType)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl, err := template(opts, "CA")
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &Pair{Cert: cert, Key: key}, nil
}

// NewNode returns a key and a certificate with CN name signed by ca, usable both as the
// instance's server certificate and as its client certificate towards the primary. The CN
// must equal the node's replication user name on the primary.
func NewNode(ca *Pair, name string, opts Options) (*Pair, error) {
	opts = opts.withDefaults()
	if err := CheckNodeName(name); err != nil {
		return nil, err
	}
	key, err := newKey(opts.KeyType)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", name, err)
	}
	tmpl, err := template(opts, name)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if _, isRSA := key.(*rsa.PrivateKey); isRSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.DNSNames = []string{name}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate for %s: %w", name, err)
	}
	return &Pair{Cert: cert, Key: key}, nil
}

func template(opts Options, cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	now := opts.Clock.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{opts.Organization}, CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(opts.Validity),
	}, nil
}

// reservedRoles cannot be role names in PostgreSQL (CREATE ROLE refuses them).
var reservedRoles = map[string]bool{"public": true, "none": true, "current_user": true,
	"session_user": true, "current_role": true}

// CheckNodeName says whether name can be a node name: the certificate's CN, the node's
// replication user on the primary (a PostgreSQL role, compared with the CN by pg_hba's
// "cert" method) and a directory under the CA's. Allowed: 1 to 63 characters (PostgreSQL's
// limit) of lower-case letters, digits, "_", "-" and ".", starting with a letter, digit or
// "_"; not a name PostgreSQL reserves (pg_*, public, none, current_user, ...).
func CheckNodeName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("node name %q: %s (it is the certificate's CN and a PostgreSQL role: "+
			"1-63 of a-z 0-9 _ - ., starting with a letter, digit or _)", name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 63:
		return bad("longer than 63 characters")
	case name[0] == '-' || name[0] == '.':
		return bad("starts with " + name[:1])
	case strings.HasPrefix(strings.ToLower(name), "pg_") || reservedRoles[strings.ToLower(name)]:
		return bad("reserved by PostgreSQL")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return bad(fmt.Sprintf("%q not allowed", r))
		}
	}
	return nil
}
