// Package hostkeys holds what the project's SSH clients (config sync, lbadapter upgrade) share
// about known_hosts.
package hostkeys

import (
	"crypto/ed25519"
	"errors"
	"net"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Algorithms asks the known_hosts callback about a throwaway key: the KeyError lists
// the keys known for addr, whose types are the host key algorithms to negotiate (so a
// server with several keys is asked for the one known_hosts holds).
func Algorithms(cb ssh.HostKeyCallback, addr string) []string {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil
	}
	tcp := &net.TCPAddr{IP: net.IPv4zero}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(h); ip != nil {
			tcp.IP = ip
		}
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, tcp, probe.PublicKey()); !errors.As(err, &ke) {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, k := range ke.Want {
		t := k.Key.Type()
		if t == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		}
		add(t)
	}
	return out
}

// Rejected is a host key that known_hosts does not accept.
type Rejected struct {
	Key         ssh.PublicKey
	Fingerprint string // SHA256:...
	// Listed is the known_hosts line holding another key for the host; nil when the host
	// is not listed at all (an unknown host).
	Listed *knownhosts.KnownKey
}

// Check asks cb about key: nil, nil when known_hosts accepts it; a *Rejected when it holds
// another key for the host or none (a *knownhosts.KeyError); err for any other failure.
// Each client words the rejection its own way.
func Check(cb ssh.HostKeyCallback, hostname string, remote net.Addr, key ssh.PublicKey) (*Rejected, error) {
	err := cb(hostname, remote, key)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil, err
	}
	r := &Rejected{Key: key, Fingerprint: ssh.FingerprintSHA256(key)}
	if len(ke.Want) > 0 {
		r.Listed = &ke.Want[0]
	}
	return r, nil
}
