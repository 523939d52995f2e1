package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Fault makes one piece of a generated X-Road node bad.
type Fault string

// The faults WriteNode and Node.Break know.
const (
	FaultGlobalConfExpired   Fault = "globalconf-expired"    // shared-params metadata expirationDate in the past
	FaultSharedParamsMissing Fault = "shared-params-missing" // main instance's shared-params.xml absent
	FaultNoAuthKey           Fault = "no-auth-key"           // no AUTHENTICATION key on the soft token
	FaultCertInactive        Fault = "cert-inactive"         // auth cert active="false"
	FaultCertUnregistered    Fault = "cert-unregistered"     // auth cert status "saved"
	FaultCertGarbled         Fault = "cert-garbled"          // auth cert contents not a certificate
	FaultOCSPMissing         Fault = "ocsp-missing"          // no cached OCSP response
	FaultOCSPUnsuccessful    Fault = "ocsp-unsuccessful"     // OCSP responseStatus internalError (2)
	FaultOCSPRevoked         Fault = "ocsp-revoked"          // cert status revoked
	FaultOCSPNextUpdate      Fault = "ocsp-next-update"      // nextUpdate in the past
)

// NodeOptions shape a generated X-Road security server node directory.
type NodeOptions struct {
	Role            string    // node.ini [node] type: "master", "slave" or "" (standalone, no node.ini)
	HealthInterface string    // default 127.0.0.1
	HealthPort      int       // default: a free port; -1 writes health-check-port = 0 (disabled)
	DB              *Postgres // the serverconf database server (nil: db.properties points at a closed port)
	Instance        string    // globalconf instance identifier, default "EE"
	LBAgentINI      string    // content of conf.d/lbagent.ini (optional)
	DBPassword      string    // the serverconf user's password; default a random one per DB server (or node)
	NodeINI         string    // extra lines for conf.d/node.ini after [node]
	LocalINI        string    // extra lines for conf.d/local.ini after the [proxy] keys
	Faults          []Fault
}

// Node is a generated X-Road node: its /etc/xroad replacement and OCSP cache.
type Node struct {
	Root       string // everything lives under here
	XRoadDir   string // pass as lbagent --xroad-dir
	OCSPDir    string // pass as lbagent --ocsp-cache-dir
	HealthAddr string // host:port of the health check port ("" when disabled)
	DBPassword string

	opts    NodeOptions
	faults  map[Fault]bool
	caCert  *x509.Certificate
	caKey   *ecdsa.PrivateKey
	auth    *x509.Certificate
	authKey *ecdsa.PrivateKey
}

// NewNode writes a node under a test temp dir.
func NewNode(t testing.TB, o NodeOptions) *Node {
	t.Helper()
	n, err := WriteNode(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// WriteNode writes an X-Road-shaped node under root: conf.d/local.ini, conf.d/node.ini,
// db.properties, globalconf/, signer/keyconf.xml with an authentication key and certificate
// signed by a test CA, and an OCSP cache with a real DER response for that certificate.
// When o.DB is set, the serverconf database and user are created on it.
func WriteNode(root string, o NodeOptions) (*Node, error) {
	if o.HealthInterface == "" {
		o.HealthInterface = "127.0.0.1"
	}
	if o.Instance == "" {
		o.Instance = "EE"
	}
	n := &Node{Root: root, XRoadDir: filepath.Join(root, "etc", "xroad"), OCSPDir: filepath.Join(root, "cache"),
		DBPassword: o.DBPassword, opts: o, faults: map[Fault]bool{}}
	if n.DBPassword == "" && o.DB != nil {
		n.DBPassword = o.DB.ServerconfPassword()
	}
	if n.DBPassword == "" {
		n.DBPassword = Secret()
	}
	for _, f := range o.Faults {
		n.faults[f] = true
	}
	if o.HealthPort == 0 {
		p, err := FreePort(o.HealthInterface)
		if err != nil {
			return nil, err
		}
		n.opts.HealthPort = p
	}
	if n.opts.HealthPort > 0 {
		n.HealthAddr = net.JoinHostPort(o.HealthInterface, strconv.Itoa(n.opts.HealthPort))
	}
	if err := n.makePKI(); err != nil {
		return nil, err
	}
	if o.DB != nil {
		if err := n.createServerConf(context.Background()); err != nil {
			return nil, err
		}
	}
	if err := n.writeConf(); err != nil {
		return nil, err
	}
	return n, n.rewrite()
}

// Break sets a fault and rewrites the affected files.
func (n *Node) Break(f Fault) error { n.faults[f] = true; return n.rewrite() }

// Fix clears a fault and rewrites the affected files.
func (n *Node) Fix(f Fault) error { delete(n.faults, f); return n.rewrite() }

// AuthCert is the node's authentication certificate.
func (n *Node) AuthCert() *x509.Certificate { return n.auth }

func (n *Node) makePKI() error {
	var err error
	if n.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test X-Road CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &n.caKey.PublicKey, n.caKey)
	if err != nil {
		return err
	}
	if n.caCert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	if n.authKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	authTmpl := &x509.Certificate{SerialNumber: serial,
		Subject:   pkix.Name{CommonName: "ss1", Organization: []string{"Test Org"}, Country: []string{n.opts.Instance}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err = x509.CreateCertificate(rand.Reader, authTmpl, n.caCert, &n.authKey.PublicKey, n.caKey)
	if err != nil {
		return err
	}
	n.auth, err = x509.ParseCertificate(der)
	return err
}

func (n *Node) createServerConf(ctx context.Context) error {
	db := n.opts.DB
	return db.Exec(ctx, "postgres",
		fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'serverconf') THEN
    CREATE ROLE serverconf LOGIN PASSWORD '%s';
  END IF;
END $$`, n.DBPassword),
		`SELECT 1`,
	)
}

func (n *Node) writeConf() error {
	o := n.opts
	confd := filepath.Join(n.XRoadDir, "conf.d")
	port := o.HealthPort
	if port < 0 {
		port = 0
	}
	local := fmt.Sprintf("[proxy]\nhealth-check-interface=%s\nhealth-check-port=%d\nserver-support-clients-pooled-connections=false\n%s",
		o.HealthInterface, port, o.LocalINI)
	files := map[string]string{filepath.Join(confd, "local.ini"): local}
	if o.Role != "" || o.NodeINI != "" {
		files[filepath.Join(confd, "node.ini")] = fmt.Sprintf("[node]\ntype=%s\n%s", o.Role, o.NodeINI)
	}
	if o.LBAgentINI != "" {
		files[filepath.Join(confd, "lbagent.ini")] = o.LBAgentINI
	}
	dbHost, dbPort := "127.0.0.1", 1
	if o.DB != nil {
		dbHost, dbPort = o.DB.Host, o.DB.Port
		if err := n.ensureDatabase(context.Background()); err != nil {
			return err
		}
	}
	files[filepath.Join(n.XRoadDir, "db.properties")] = fmt.Sprintf(`serverconf.hibernate.jdbc.use_streams_for_binary = true
serverconf.hibernate.dialect = ee.ria.xroad.common.db.CustomPostgreSQLDialect
serverconf.hibernate.connection.driver_class = org.postgresql.Driver
serverconf.hibernate.connection.url = jdbc:postgresql://%s:%d/serverconf
serverconf.hibernate.connection.username = serverconf
serverconf.hibernate.connection.password = %s
serverconf.hibernate.hikari.dataSource.currentSchema = serverconf,public
messagelog.hibernate.jdbc.use_streams_for_binary = true
messagelog.hibernate.connection.url = jdbc:postgresql://127.0.0.1:5432/messagelog
messagelog.hibernate.connection.username = messagelog
messagelog.hibernate.connection.password = messagelog-pw
`, dbHost, dbPort, n.DBPassword)
	for p, content := range files {
		if err := writeFile(p, content, 0o640); err != nil {
			return err
		}
	}
	return os.MkdirAll(n.OCSPDir, 0o755)
}

// ensureDatabase creates the serverconf database (once per server).
func (n *Node) ensureDatabase(ctx context.Context) error {
	db := n.opts.DB
	err := db.Exec(ctx, "postgres", "CREATE DATABASE serverconf OWNER serverconf")
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return err
	}
	return db.Exec(ctx, "serverconf", "CREATE SCHEMA IF NOT EXISTS serverconf AUTHORIZATION serverconf")
}

// rewrite writes globalconf, keyconf and the OCSP cache according to the faults.
func (n *Node) rewrite() error {
	if err := n.writeGlobalConf(); err != nil {
		return err
	}
	if err := n.writeKeyConf(); err != nil {
		return err
	}
	return n.writeOCSP()
}

func (n *Node) writeGlobalConf() error {
	gc := filepath.Join(n.XRoadDir, "globalconf")
	inst := filepath.Join(gc, n.opts.Instance)
	if err := os.RemoveAll(gc); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(gc, "instance-identifier"), n.opts.Instance+"\n", 0o644); err != nil {
		return err
	}
	expiry := time.Now().Add(24 * time.Hour)
	if n.faults[FaultGlobalConfExpired] {
		expiry = time.Now().Add(-time.Hour)
	}
	for _, f := range []struct{ name, content, id string }{
		{"private-params.xml", "<conf:conf xmlns:conf=\"http://x-road.eu/xsd/xroad.xsd\"><instanceIdentifier>" + n.opts.Instance + "</instanceIdentifier></conf:conf>\n", "PRIVATE-PARAMETERS"},
		{"shared-params.xml", "<conf:conf xmlns:conf=\"http://x-road.eu/xsd/xroad.xsd\"><instanceIdentifier>" + n.opts.Instance + "</instanceIdentifier></conf:conf>\n", "SHARED-PARAMETERS"},
	} {
		if f.name == "shared-params.xml" && n.faults[FaultSharedParamsMissing] {
			continue
		}
		if err := writeFile(filepath.Join(inst, f.name), f.content, 0o644); err != nil {
			return err
		}
		meta, _ := json.Marshal(map[string]string{
			"contentIdentifier": f.id, "instanceIdentifier": n.opts.Instance,
			"contentLocation": "/" + f.name, "expirationDate": expiry.Format("2006-01-02T15:04:05.000-07:00"),
			"configurationVersion": "3",
		})
		if err := writeFile(filepath.Join(inst, f.name+".metadata"), string(meta), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) writeKeyConf() error {
	pub, _ := x509.MarshalPKIXPublicKey(&n.authKey.PublicKey)
	sum := n.auth.SerialNumber.Bytes()
	keyID := strings.ToUpper(hex.EncodeToString(sum))
	active, status := "true", "registered"
	if n.faults[FaultCertInactive] {
		active = "false"
	}
	if n.faults[FaultCertUnregistered] {
		status = "saved"
	}
	contents := base64.StdEncoding.EncodeToString(n.auth.Raw)
	if n.faults[FaultCertGarbled] {
		contents = base64.StdEncoding.EncodeToString([]byte("not a certificate"))
	}
	usage := "AUTHENTICATION"
	if n.faults[FaultNoAuthKey] {
		usage = "SIGNING"
	}
	doc := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<keyConf xmlns="http://x-road.eu/xsd/xroad.xsd">
    <device>
        <deviceType>softToken</deviceType>
        <friendlyName>softToken-0</friendlyName>
        <id>0</id>
        <pinIndex>1</pinIndex>
        <key usage="%s">
            <friendlyName>auth key</friendlyName>
            <keyId>%s</keyId>
            <publicKey>%s</publicKey>
            <cert active="%s" id="%s">
                <contents>%s</contents>
                <status>%s</status>
            </cert>
        </key>
    </device>
</keyConf>
`, usage, keyID, base64.StdEncoding.EncodeToString(pub), active, keyID, contents, status)
	return writeFile(filepath.Join(n.XRoadDir, "signer", "keyconf.xml"), doc, 0o640)
}

func (n *Node) writeOCSP() error {
	sum := sha1Hex(n.auth.Raw)
	path := filepath.Join(n.OCSPDir, sum+".ocsp")
	if n.faults[FaultOCSPMissing] {
		err := os.Remove(path)
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if n.faults[FaultOCSPUnsuccessful] {
		return os.WriteFile(path, ocsp.InternalErrorErrorResponse, 0o644)
	}
	now := time.Now()
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: n.auth.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	if n.faults[FaultOCSPRevoked] {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, now.Add(-time.Minute), ocsp.KeyCompromise
	}
	if n.faults[FaultOCSPNextUpdate] {
		tmpl.ThisUpdate, tmpl.NextUpdate = now.Add(-2*time.Hour), now.Add(-time.Hour)
	}
	der, err := ocsp.CreateResponse(n.caCert, n.caCert, tmpl, n.caKey)
	if err != nil {
		return err
	}
	return os.WriteFile(path, der, 0o644)
}

func writeFile(path, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), mode)
}
