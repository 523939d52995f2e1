package xroad

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xroad-lb/lbkit/settings"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestHealthCheckSettings(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    HealthCheck
		wantErr string // substring after the directory
	}{
		{"defaults", nil, HealthCheck{"0.0.0.0", 0}, ""},
		{"local.ini", map[string]string{"conf.d/local.ini": "[proxy]\nhealth-check-interface=10.0.0.5\nhealth-check-port=5588\n"},
			HealthCheck{"10.0.0.5", 5588}, ""},
		{"local.ini wins over packaged and override files", map[string]string{
			"conf.d/proxy.ini":       "[proxy]\nhealth-check-port=1\n",
			"conf.d/override-ee.ini": "[proxy]\nhealth-check-port=2\nhealth-check-interface=127.0.0.1\n",
			"conf.d/local.ini":       "[proxy]\nhealth-check-port=5588\n",
			"conf.d/node.ini":        "[proxy]\nhealth-check-port=9\n",
		}, HealthCheck{"127.0.0.1", 5588}, ""},
		{"port not a number", map[string]string{"conf.d/local.ini": "[proxy]\nhealth-check-port=55x8\n"},
			HealthCheck{}, `conf.d/local.ini:2: [proxy] health-check-port = "55x8": not an integer`},
		{"port out of range", map[string]string{"conf.d/local.ini": "[proxy]\nhealth-check-port=70000\n"},
			HealthCheck{}, `conf.d/local.ini:2: [proxy] health-check-port = "70000": want 0 to 65535`},
		{"unclosed section", map[string]string{"conf.d/local.ini": "[proxy]\nhealth-check-port=5588\n[signer\n"},
			HealthCheck{}, `conf.d/local.ini:3: unclosed section header "[signer"`},
		{"inline comment, as X-Road reads it", map[string]string{"conf.d/local.ini": "[proxy]\nhealth-check-port = 5588 ; probed by the balancer\n"},
			HealthCheck{"0.0.0.0", 5588}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			lc, err := settings.LoadXRoad(dir)
			var got HealthCheck
			if err == nil {
				got, err = ReadHealthCheck(lc)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v; want one ending in %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestNodeType(t *testing.T) {
	tests := []struct{ content, want string }{
		{"[node]\ntype=master\n", "primary"},
		{"[node]\ntype=SLAVE\n", "secondary"},
		{"[node]\ntype=secondary\n", "secondary"},
		{"[node]\ntype=standalone\n", "standalone"},
		{"[node]\n", "standalone"},
	}
	for _, tt := range tests {
		dir := writeTree(t, map[string]string{"conf.d/node.ini": tt.content})
		got, err := ReadNodeType(dir)
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: got %q, %v; want %q", tt.content, got, err, tt.want)
		}
	}
	if got, err := ReadNodeType(t.TempDir()); err != nil || got != Standalone {
		t.Errorf("no node.ini: got %q, %v; want standalone", got, err)
	}
}

func TestDBProperties(t *testing.T) {
	const good = `# X-Road db.properties
serverconf.hibernate.connection.url = jdbc:postgresql://127.0.0.1:5433/serverconf?sslmode=verify-ca&currentSchema=ignored
serverconf.hibernate.connection.username = serverconf
serverconf.hibernate.connection.password = se cret'pw
serverconf.hibernate.hikari.dataSource.currentSchema = serverconf,public
`
	dir := writeTree(t, map[string]string{"db.properties": good})
	d, err := ReadDBProperties(dir, "serverconf")
	if err != nil {
		t.Fatal(err)
	}
	if d.Host != "127.0.0.1" || d.Port != 5433 || d.Database != "serverconf" || d.User != "serverconf" ||
		d.Password != "se cret'pw" || d.Schema != "serverconf,public" || d.Params["sslmode"] != "verify-ca" {
		t.Fatalf("got %+v", d)
	}
	if s := d.String(); strings.Contains(s, "cret") {
		t.Errorf("String() %q shows the password", s)
	}
	want := `host=127.0.0.1 port=5433 dbname=serverconf user=serverconf password='se cret\'pw' sslmode=verify-ca search_path=serverconf,public`
	if got := d.ConnString(); got != want {
		t.Errorf("ConnString:\n got %s\nwant %s", got, want)
	}

	bad := []struct{ content, wantErr string }{
		{"serverconf.hibernate.connection.username = x\n", "db.properties: serverconf.hibernate.connection.url missing"},
		{"serverconf.hibernate.connection.url = jdbc:mysql://h/db\nserverconf.hibernate.connection.username = x\n",
			`serverconf.hibernate.connection.url = "jdbc:mysql://h/db": not a PostgreSQL JDBC URL (want jdbc:postgresql://host:port/database)`},
		{"serverconf.hibernate.connection.url = jdbc:postgresql://h:99999/db\nserverconf.hibernate.connection.username = x\n",
			`serverconf.hibernate.connection.url = "jdbc:postgresql://h:99999/db": bad port "99999"`},
		{"serverconf.hibernate.connection.url = jdbc:postgresql://h:5433/\nserverconf.hibernate.connection.username = x\n",
			`serverconf.hibernate.connection.url = "jdbc:postgresql://h:5433/": no database name`},
		{"serverconf.hibernate.connection.url = jdbc:postgresql://h/db\n", "db.properties: serverconf.hibernate.connection.username missing"},
	}
	for _, tt := range bad {
		dir := writeTree(t, map[string]string{"db.properties": tt.content})
		_, err := ReadDBProperties(dir, "serverconf")
		if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) {
			t.Errorf("%q: got %v; want an error ending in %q", tt.content, err, tt.wantErr)
		}
	}
	if _, err := ReadDBProperties(t.TempDir(), "serverconf"); err == nil || !strings.Contains(err.Error(), "db.properties: stat") {
		t.Errorf("missing file: got %v", err)
	}
}

func TestGlobalConf(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	meta := func(exp string) string {
		return `{"contentIdentifier":"SHARED-PARAMETERS","instanceIdentifier":"EE","contentFileName":null,"contentLocation":"/shared-params.xml","expirationDate":"` + exp + `","configurationVersion":"3"}`
	}
	base := func() map[string]string {
		return map[string]string{
			"globalconf/instance-identifier":            "EE\n",
			"globalconf/EE/private-params.xml":          "<conf/>",
			"globalconf/EE/shared-params.xml":           "<conf/>",
			"globalconf/EE/private-params.xml.metadata": meta("2026-12-01T12:00:00.000+02:00"),
			"globalconf/EE/shared-params.xml.metadata":  meta("2026-12-01T12:00:00.000+02:00"),
		}
	}
	tests := []struct {
		name    string
		change  func(map[string]string)
		wantErr string
	}{
		{"valid", func(map[string]string) {}, ""},
		{"no metadata means never expires", func(m map[string]string) { delete(m, "globalconf/EE/shared-params.xml.metadata") }, ""},
		{"expired", func(m map[string]string) {
			m["globalconf/EE/shared-params.xml.metadata"] = meta("2026-11-25T13:59:59.000+02:00")
		},
			"globalconf/EE/shared-params.xml.metadata: expired at 2026-11-25T13:59:59+02:00"},
		{"shared params missing", func(m map[string]string) { delete(m, "globalconf/EE/shared-params.xml") },
			"globalconf/EE/shared-params.xml: stat"},
		{"bad json", func(m map[string]string) { m["globalconf/EE/private-params.xml.metadata"] = "{" },
			"globalconf/EE/private-params.xml.metadata: not valid JSON: unexpected end of JSON input"},
		{"bad date", func(m map[string]string) { m["globalconf/EE/private-params.xml.metadata"] = meta("tomorrow") },
			`globalconf/EE/private-params.xml.metadata: expirationDate "tomorrow": not an ISO-8601 date-time`},
		{"no instance identifier", func(m map[string]string) { delete(m, "globalconf/instance-identifier") },
			"globalconf/instance-identifier: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := base()
			tt.change(files)
			err := CheckGlobalConf(writeTree(t, files), now)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v; want valid", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestKeyConfErrors(t *testing.T) {
	tests := []struct{ content, wantErr string }{
		{"<keyConf", "keyconf.xml: not a keyConf document: XML syntax error on line 1: unexpected EOF"},
		{`<keyConf xmlns="http://x-road.eu/xsd/xroad.xsd"><device><deviceType>softToken</deviceType></device></keyConf>`,
			"keyconf.xml: no authentication key on the software token"},
		{`<keyConf><device><deviceType>softToken</deviceType><key usage="AUTHENTICATION"><keyId>K1</keyId><cert active="true" id="C1"><contents>AAAA</contents><status>registered</status></cert></key></device></keyConf>`,
			"keyconf.xml: key K1 cert C1: authentication certificate contents unreadable"},
		{`<keyConf><device><deviceType>softToken</deviceType><key usage="AUTHENTICATION"><keyId>K1</keyId><cert active="false" id="C1"><contents>AAAA</contents><status>registered</status></cert></key></device></keyConf>`,
			"keyconf.xml: no active, registered authentication certificate within its validity"},
	}
	for _, tt := range tests {
		dir := writeTree(t, map[string]string{"signer/keyconf.xml": tt.content})
		_, err := ReadAuthCert(filepath.Join(dir, "signer/keyconf.xml"), time.Now())
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("got %v; want an error containing %q", err, tt.wantErr)
		}
	}
}
