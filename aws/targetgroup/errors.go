package targetgroup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"

	"github.com/xroad-lb/lbkit/lbadapters"
)

// Error codes of ELBv2 and of AWS's authentication that the adapter sorts into the
// lbadapters sentinels (and so into lbadapter's exit codes).
var (
	notFoundCodes = map[string]bool{"TargetGroupNotFound": true, "InvalidTarget": true, "LoadBalancerNotFound": true}
	deniedCodes   = map[string]bool{"AccessDenied": true, "AccessDeniedException": true, "UnauthorizedOperation": true,
		"SignatureDoesNotMatch": true, "InvalidClientTokenId": true, "UnrecognizedClientException": true,
		"ExpiredToken": true, "ExpiredTokenException": true, "RequestExpired": true, "AuthFailure": true,
		"IncompleteSignature": true, "MissingAuthenticationToken": true, "InvalidSignatureException": true}
	unreachableCodes = map[string]bool{"Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
		"ServiceUnavailable": true, "InternalFailure": true, "InternalError": true}
)

// adapterError is a one-line message for the operator that still matches (errors.Is) both
// the lbadapters sentinel and the SDK's error.
type adapterError struct {
	kind  error
	msg   string
	cause error
}

func (e *adapterError) Error() string { return e.msg }
func (e *adapterError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.cause}
	}
	return []error{e.kind, e.cause}
}

// explain turns an SDK error into one line with the AWS error code and message, never the
// SDK's own multi-part text (and never a credential).
func (a *Adapter) explain(n lbadapters.Node, err error) error {
	op := "ELBv2"
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		op = oe.Operation()
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code, msg := api.ErrorCode(), oneLine(api.ErrorMessage())
		text := fmt.Sprintf("AWS %s %s: %s: %s", a.where, op, code, msg)
		switch {
		case code == "TargetGroupNotFound":
			return &adapterError{lbadapters.ErrNotFound, text + " (see target-group-arn)", err}
		case code == "InvalidTarget" && n.Name != "":
			return &adapterError{lbadapters.ErrNotFound, fmt.Sprintf("%s (node %s target %s; see target-id, target-port)", text, n.Name, targetText(n)), err}
		case notFoundCodes[code]:
			return &adapterError{lbadapters.ErrNotFound, text, err}
		case deniedCodes[code]:
			return &adapterError{lbadapters.ErrDenied, text, err}
		case unreachableCodes[code]:
			return &adapterError{lbadapters.ErrUnreachable, text + " (after the SDK's retries)", err}
		}
		return &adapterError{nil, text, err}
	}
	var se *v4.SigningError
	if errors.As(err, &se) {
		return &adapterError{lbadapters.ErrDenied, fmt.Sprintf("AWS %s %s: %v (environment, AWS_PROFILE, shared config, SSO or instance role)",
			a.where, op, ErrNoCredentials), errors.Join(ErrNoCredentials, err)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &adapterError{lbadapters.ErrUnreachable, fmt.Sprintf("AWS %s %s: no answer within %s", a.where, op, a.timeout), err}
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		cause := err.Error()
		if ne.Err != nil {
			cause = ne.Err.Error()
		}
		return &adapterError{lbadapters.ErrUnreachable, fmt.Sprintf("AWS %s %s unreachable: %s", a.where, op, oneLine(cause)), err}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &adapterError{lbadapters.ErrUnreachable, fmt.Sprintf("AWS %s %s unreachable: %s", a.where, op, oneLine(dnsErr.Error())), err}
	}
	return &adapterError{nil, fmt.Sprintf("AWS %s %s: %s", a.where, op, oneLine(rootCause(err))), err}
}

// rootCause is the innermost error's text.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
