package xroad

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of AuthCert, so the health check can pick X-Road's message.
var (
	ErrNoAuthKey   = errors.New("no authentication key on the software token")
	ErrNoAuthCert  = errors.New("no active, registered authentication certificate within its validity")
	ErrCertContent = errors.New("authentication certificate contents unreadable")
)

// keyConf mirrors the parts of signer/keyconf.xml we read.
type keyConf struct {
	XMLName xml.Name `xml:"keyConf"`
	Devices []struct {
		ID         string `xml:"id"`
		DeviceType string `xml:"deviceType"`
		Keys       []struct {
			Usage        string `xml:"usage,attr"`
			FriendlyName string `xml:"friendlyName"`
			KeyID        string `xml:"keyId"`
			Certs        []struct {
				Active   string `xml:"active,attr"`
				ID       string `xml:"id,attr"`
				Contents string `xml:"contents"`
				Status   string `xml:"status"`
			} `xml:"cert"`
		} `xml:"key"`
	} `xml:"device"`
}

// AuthCert is the usable authentication certificate from keyconf.xml.
type AuthCert struct {
	KeyID  string
	CertID string
	Cert   *x509.Certificate
}

// ReadAuthCert finds the authentication certificate X-Road would use at time now: a key with
// usage AUTHENTICATION on the software token, a cert that is active, whose status starts
// with "registered", and that is within its validity period.
func ReadAuthCert(path string, now time.Time) (*AuthCert, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var kc keyConf
	if err := xml.Unmarshal(b, &kc); err != nil {
		return nil, fmt.Errorf("%s: not a keyConf document: %v", path, err)
	}
	foundKey := false
	var lastErr error
	for _, d := range kc.Devices {
		if d.DeviceType != "softToken" {
			continue
		}
		for _, k := range d.Keys {
			if k.Usage != "AUTHENTICATION" {
				continue
			}
			foundKey = true
			for _, c := range k.Certs {
				if c.Active != "true" || !strings.HasPrefix(c.Status, "registered") {
					continue
				}
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Contents), ""))
				if err != nil || len(der) == 0 {
					lastErr = fmt.Errorf("%s: key %s cert %s: %w", path, k.KeyID, c.ID, ErrCertContent)
					continue
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					lastErr = fmt.Errorf("%s: key %s cert %s: %w: %v", path, k.KeyID, c.ID, ErrCertContent, err)
					continue
				}
				if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
					lastErr = fmt.Errorf("%s: key %s cert %s: %w (valid %s to %s)", path, k.KeyID, c.ID,
						ErrNoAuthCert, cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
					continue
				}
				return &AuthCert{KeyID: k.KeyID, CertID: c.ID, Cert: cert}, nil
			}
		}
	}
	if !foundKey {
		return nil, fmt.Errorf("%s: %w", path, ErrNoAuthKey)
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%s: %w", path, ErrNoAuthCert)
}
