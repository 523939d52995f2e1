package xroad

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSPStatusError is an OCSP response whose responseStatus is not successful (0).
type OCSPStatusError struct {
	Path   string
	Status int
}

func (e *OCSPStatusError) Error() string {
	return fmt.Sprintf("%s: OCSP response status %d (%s)", e.Path, e.Status, ocsp.ResponseStatus(e.Status))
}

// Errors of CheckOCSP for a successful response that does not vouch for the certificate.
var (
	ErrOCSPRevoked = errors.New("certificate revoked")
	ErrOCSPUnknown = errors.New("certificate status unknown")
	ErrOCSPExpired = errors.New("nextUpdate has passed")
)

// OCSPCachePath is where X-Road caches the OCSP response of cert:
// dir/<lowercase sha1 hex of the DER cert>.ocsp.
func OCSPCachePath(dir string, cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return filepath.Join(dir, hex.EncodeToString(sum[:])+".ocsp")
}

// ReadOCSP reads and parses the cached OCSP response of cert. A response whose status is not
// successful gives *OCSPStatusError. The responder's signature is not verified: that is the
// signer's job when it stores the response.
func ReadOCSP(dir string, cert *x509.Certificate) (*ocsp.Response, error) {
	path := OCSPCachePath(dir, cert)
	der, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	resp, err := ocsp.ParseResponseForCert(der, cert, nil)
	var re ocsp.ResponseError
	if errors.As(err, &re) {
		return nil, &OCSPStatusError{Path: path, Status: int(re.Status)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not a DER OCSP response for serial %s: %w", path, cert.SerialNumber, err)
	}
	return resp, nil
}

// CheckOCSP says whether a successful response vouches for its certificate at time now:
// status good and nextUpdate (when present) not passed.
func CheckOCSP(resp *ocsp.Response, now time.Time) error {
	switch resp.Status {
	case ocsp.Good:
	case ocsp.Revoked:
		return fmt.Errorf("%w at %s", ErrOCSPRevoked, resp.RevokedAt.Format(time.RFC3339))
	default:
		return ErrOCSPUnknown
	}
	if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
		return fmt.Errorf("%w (%s)", ErrOCSPExpired, resp.NextUpdate.Format(time.RFC3339))
	}
	return nil
}
