// Package xroad reads an X-Road security server's own files (conf.d/*.ini, node.ini,
// db.properties, global configuration, signer keyconf, OCSP cache), so an administrator
// configures nothing twice. Every error names the file and the line or field at fault.
package xroad

// Default locations on a security server.
const (
	DefaultDir       = "/etc/xroad"
	DefaultOCSPCache = "/var/cache/xroad"
	DefaultAdmin     = "127.0.0.1:5566"
)
