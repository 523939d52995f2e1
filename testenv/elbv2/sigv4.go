package elbv2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Service is the SigV4 signing name of ELBv2.
const Service = "elasticloadbalancing"

// authorization is the parsed Authorization header of a SigV4-signed request.
type authorization struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseAuthorization(h string) (authorization, bool) {
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(h, algo) {
		return authorization{}, false
	}
	var a authorization
	for _, part := range strings.Split(strings.TrimPrefix(h, algo), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return authorization{}, false
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return authorization{}, false
			}
			a.accessKey, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	return a, a.accessKey != "" && a.signature != "" && len(a.signedHeaders) > 0
}

// verify checks the request's SigV4 signature the way AWS does: it signs the same canonical
// request again with the secret it knows (using the SDK's own signer) and compares.
func (s *Server) verify(r *http.Request, body []byte) *apiError {
	a, ok := parseAuthorization(r.Header.Get("Authorization"))
	if !ok {
		return &apiError{http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	if a.accessKey != s.opts.AccessKeyID {
		return &apiError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if a.service != Service || a.region != s.opts.Region {
		return &apiError{http.StatusForbidden, "SignatureDoesNotMatch",
			"Credential should be scoped to a valid region and service '" + Service + "' in '" + s.opts.Region + "'."}
	}
	t, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || t.Format("20060102") != a.date {
		return &apiError{http.StatusForbidden, "IncompleteSignature", "X-Amz-Date is missing or does not match the credential scope."}
	}
	if d := time.Since(t); d > 15*time.Minute || d < -15*time.Minute {
		return &apiError{http.StatusForbidden, "SignatureDoesNotMatch", "Signature expired: " + r.Header.Get("X-Amz-Date") + " is not within 15 minutes of the server's time."}
	}
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return &apiError{http.StatusBadRequest, "InvalidRequest", "bad request line"}
	}
	again.Host = r.Host
	again.ContentLength = 0
	for _, h := range a.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.opts.AccessKeyID, SecretAccessKey: s.opts.SecretAccessKey,
		SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), Service, a.region, t); err != nil {
		return &apiError{http.StatusForbidden, "SignatureDoesNotMatch", "cannot sign the request again: " + err.Error()}
	}
	want, ok := parseAuthorization(again.Header.Get("Authorization"))
	if !ok || !slices.Equal(want.signedHeaders, a.signedHeaders) ||
		subtle.ConstantTimeCompare([]byte(want.signature), []byte(a.signature)) != 1 {
		return &apiError{http.StatusForbidden, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return nil
}
