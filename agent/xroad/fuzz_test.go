package xroad

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The readers take files an operator (or a broken disk) may have mangled: whatever the
// bytes, they return settings or an error, never panic.

func FuzzDBProperties(f *testing.F) {
	f.Add("serverconf.hibernate.connection.url = jdbc:postgresql://127.0.0.1:5433/serverconf\nserverconf.hibernate.connection.username = serverconf\n")
	f.Add("serverconf.hibernate.connection.url = jdbc:postgresql://[::1]:x/\\\n  db?ssl=true&currentSchema=a\nserverconf.hibernate.connection.username=u\n")
	f.Add("serverconf.hibernate.connection.url=jdbc:postgresql:db\n")
	f.Fuzz(func(t *testing.T, content string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "db.properties"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := ReadDBProperties(dir, "serverconf")
		if err == nil && (d.Port <= 0 || d.Port > 65535 || d.Database == "" || d.User == "") {
			t.Fatalf("accepted incomplete settings %+v", d)
		}
	})
}

func FuzzKeyConf(f *testing.F) {
	f.Add(`<keyConf><device><deviceType>softToken</deviceType><key usage="AUTHENTICATION"><keyId>K</keyId><cert active="true" id="C"><contents>MIIB</contents><status>registered</status></cert></key></device></keyConf>`)
	f.Add(`<keyConf xmlns="http://x-road.eu/xsd/xroad.xsd"><device>`)
	f.Fuzz(func(t *testing.T, content string) {
		p := filepath.Join(t.TempDir(), "keyconf.xml")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if ac, err := ReadAuthCert(p, time.Now()); err == nil && ac.Cert == nil {
			t.Fatal("no error and no certificate")
		}
	})
}
