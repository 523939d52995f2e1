// Package xroadcheck holds the X-Road security server's health checks, with X-Road's
// names and exact failure messages, as check.Func values.
package xroadcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/jonboulle/clockwork"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/xroad"
)

// X-Road's check names, in X-Road's order.
const (
	NameHSM        = "Hardware Security Modules status"
	NameGlobalConf = "Global conf validity"
	NameAuthKey    = "Authentication key OCSP status"
	NameServerConf = "Server conf database status"
	NameMemory     = "Proxy memory usage status"
)

// X-Road's failure messages.
const (
	MsgGlobalConfExpired = "Global configuration is expired"
	MsgNoAuthKey         = "No authentication key available. Signer might be down."
	MsgNoCertChain       = "No certificate chain available in authentication key."
	MsgNoEndEntityCert   = "No end entity certificate available for authentication key."
	MsgOCSPFailed        = "Getting OCSP response for authentication key failed."
	MsgServerConfDown    = "ServerConf is not available"
	MsgServerConfBad     = "Server Conf database did not respond as expected"
	MsgMemory            = "Memory usage above threshold"
)

// MsgOCSPStatus is the message for an OCSP response whose status is not successful.
func MsgOCSPStatus(status int) string {
	return fmt.Sprintf("Authentication key OCSP response status %d", status)
}

// GlobalConf checks that the global configuration under xroadDir is present and not expired.
func GlobalConf(xroadDir string, clock clockwork.Clock) check.Func {
	return func(context.Context) error {
		if err := xroad.CheckGlobalConf(xroadDir, clock.Now()); err != nil {
			return check.Fail(MsgGlobalConfExpired, err)
		}
		return nil
	}
}

// AuthKeyOCSP checks the authentication key as X-Road does: the signer must offer an
// active, registered authentication certificate whose cached OCSP response is good.
//
// Mapping to X-Road's messages: no usable key or certificate (also: revoked, status
// unknown, nextUpdate passed, which make X-Road's signer skip the certificate) →
// "No authentication key available. Signer might be down."; a certificate whose contents
// cannot be read → "No end entity certificate available for authentication key."; no
// readable OCSP response → "Getting OCSP response for authentication key failed.";
// response status not successful → "Authentication key OCSP response status <n>".
func AuthKeyOCSP(xroadDir, ocspDir string, clock clockwork.Clock) check.Func {
	keyconf := filepath.Join(xroadDir, "signer", "keyconf.xml")
	return func(context.Context) error {
		t := clock.Now()
		ac, err := xroad.ReadAuthCert(keyconf, t)
		if errors.Is(err, xroad.ErrCertContent) {
			return check.Fail(MsgNoEndEntityCert, err)
		}
		if err != nil {
			return check.Fail(MsgNoAuthKey, err)
		}
		resp, err := xroad.ReadOCSP(ocspDir, ac.Cert)
		var se *xroad.OCSPStatusError
		if errors.As(err, &se) {
			return check.Fail(MsgOCSPStatus(se.Status), err)
		}
		if err != nil {
			return check.Fail(MsgOCSPFailed, err)
		}
		if err := xroad.CheckOCSP(resp, t); err != nil {
			return check.Fail(MsgNoAuthKey, fmt.Errorf("%s: %w", xroad.OCSPCachePath(ocspDir, ac.Cert), err))
		}
		return nil
	}
}

// TCP checks that something accepts connections on addr (a local port such as the proxy's
// or the signer's). Name is shown in the message.
func TCP(name, addr string) check.Func {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return check.Fail(fmt.Sprintf("%s port %s is not accepting connections", name, addr), err)
		}
		return c.Close()
	}
}

// TCPName is the check name of a TCP liveness check.
func TCPName(name string) string { return "TCP liveness: " + name }
