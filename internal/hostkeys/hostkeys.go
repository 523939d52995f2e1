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
