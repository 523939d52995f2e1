package db

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseLSN(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want LSN
		ok   bool
	}{
		{"0/0", 0, true},
		{"16/B374D848", 0x16B374D848, true},
		{"FFFFFFFF/FFFFFFFF", 0xFFFFFFFFFFFFFFFF, true},
		{"16B374D848", 0, false},
		{"x/1", 0, false},
	} {
		got, err := ParseLSN(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLSN(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("String() = %q; want %q", got.String(), tt.in)
		}
	}
	if got := LSN(10).Sub(20); got != 0 {
		t.Errorf("Sub behind: got %d; want 0", got)
	}
}

func TestParseLagLimit(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    LagLimit
		wantErr string
	}{
		{"", LagLimit{}, ""},
		{"1048576", LagLimit{Bytes: 1 << 20}, ""},
		{"16MB", LagLimit{Bytes: 16 << 20}, ""},
		{"64kB", LagLimit{Bytes: 64 << 10}, ""},
		{"30s", LagLimit{Time: 30 * time.Second}, ""},
		{"16MB, 1m", LagLimit{Bytes: 16 << 20, Time: time.Minute}, ""},
		{"16XB", LagLimit{}, `"16XB" is neither a byte size (16MB) nor a duration (30s)`},
		{"0", LagLimit{}, `"0": a lag limit must be positive`},
		{"-5s", LagLimit{}, `"-5s": a lag limit must be positive`},
	} {
		got, err := ParseLagLimit(tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("ParseLagLimit(%q) = %+v, %q; want %+v, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

func TestLagLimitExceeded(t *testing.T) {
	s := &Standby{LagBytes: 2000, LagSeconds: 5}
	for _, tt := range []struct {
		l    LagLimit
		want bool
	}{
		{LagLimit{}, false},
		{LagLimit{Bytes: 1999}, true},
		{LagLimit{Bytes: 2000}, false},
		{LagLimit{Time: 4 * time.Second}, true},
		{LagLimit{Bytes: 1 << 20, Time: time.Minute}, false},
	} {
		if got := tt.l.Exceeded(s); got != tt.want {
			t.Errorf("%+v.Exceeded: got %v; want %v", tt.l, got, tt.want)
		}
	}
}

// TestLoadConfig reads testdata/config/<case>/conf.d/*.ini; a case named bad-* has its
// expected error (with the xroad dir written as DIR) in testdata/config/<case>/error.
func TestLoadConfig(t *testing.T) {
	cases, err := filepath.Glob("testdata/config/*")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	want := map[string]Config{
		"empty":      {Interval: DefaultInterval},
		"cluster":    {Interval: 5 * time.Second, LagLimit: LagLimit{Bytes: 16 << 20}},
		"node-wins":  {Interval: 3 * time.Second, LagLimit: LagLimit{Time: 30 * time.Second}},
		"no-section": {Interval: DefaultInterval},
		"upper-case": {Interval: DefaultInterval, LagLimit: LagLimit{Bytes: 1 << 20}},
	}
	for _, dir := range cases {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			got, err := LoadConfig(dir)
			if strings.HasPrefix(name, "bad-") {
				b, rerr := os.ReadFile(filepath.Join(dir, "error"))
				if rerr != nil {
					t.Fatal(rerr)
				}
				wantErr := strings.ReplaceAll(strings.TrimSpace(string(b)), "DIR", dir)
				if err == nil || err.Error() != wantErr {
					t.Errorf("got %v; want %s", err, wantErr)
				}
				return
			}
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			if err != nil || got != w {
				t.Errorf("got %+v, %v; want %+v", got, err, w)
			}
		})
	}
}

func TestEnsureHBA(t *testing.T) {
	rule := hbaRule("slavenode", "samenet")
	initdb := "# comment\nlocal all all trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 scram-sha-256\n"
	for _, tt := range []struct {
		name, in, want string
		changed        bool
	}{
		{"before the first replication rule", initdb,
			"# comment\nlocal all all trust\n# C\nhostssl\treplication\t+slavenode\tsamenet\tcert\nlocal replication all trust\nhost replication all 127.0.0.1/32 scram-sha-256\n", true},
		{"appended without replication rules", "local all all peer", "local all all peer\n# C\nhostssl\treplication\t+slavenode\tsamenet\tcert\n", true},
		{"present with other spacing", "hostssl   replication  +slavenode samenet   cert  # mine\n", "hostssl   replication  +slavenode samenet   cert  # mine\n", false},
		{"commented out is not present", "#hostssl replication +slavenode samenet cert\n", "#hostssl replication +slavenode samenet cert\n# C\nhostssl\treplication\t+slavenode\tsamenet\tcert\n", true},
	} {
		got, changed := ensureHBA(tt.in, rule, "C")
		if got != tt.want || changed != tt.changed {
			t.Errorf("%s: got %q, %v; want %q, %v", tt.name, got, changed, tt.want, tt.changed)
		}
	}
}

func TestConfLine(t *testing.T) {
	for _, tt := range []struct{ in, key, val string }{
		{"primary_conninfo = 'host=a user=b'", "primary_conninfo", "host=a user=b"},
		{"port=5433", "port", "5433"},
		{"ssl on # comment", "ssl", "on"},
		{"x = 'it''s'", "x", "it's"},
	} {
		k, v, ok := confLine(tt.in)
		if !ok || k != tt.key || v != tt.val {
			t.Errorf("confLine(%q) = %q, %q, %v; want %q, %q", tt.in, k, v, ok, tt.key, tt.val)
		}
	}
	if _, _, ok := confLine("# port = 1"); ok {
		t.Error("a comment parsed as a setting")
	}
}

func TestParseMB(t *testing.T) {
	for in, want := range map[string]int64{"8": 8, "128MB": 128, "1GB": 1024, "2048kB": 2} {
		if got, err := parseMB(in); err != nil || got != want {
			t.Errorf("parseMB(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseMB("8XB"); err == nil {
		t.Error("parseMB(8XB): want an error")
	}
}

func TestConnStringHidesPassword(t *testing.T) {
	c := Conn{Host: "127.0.0.1", Port: 5433, User: "serverconf", Password: "s3cret", DBName: "serverconf"}
	for _, s := range []string{c.String(), c.DSN()} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("%q shows the password", s)
		}
		if !strings.Contains(s, "5433") {
			t.Errorf("%q does not name the port", s)
		}
	}
	cfg, err := c.Config()
	if err != nil || cfg.Password != "s3cret" {
		t.Errorf("Config: password %q, %v; want s3cret", cfg.Password, err)
	}
}

func TestHasReplicationRule(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		want       bool
	}{
		{"the guide's rule", "local all all trust\nhostssl replication +slavenode samenet cert\n", true},
		{"scram with an address and mask", "hostssl replication +slavenode 10.0.0.0 255.255.255.0 scram-sha-256\n", true},
		{"all users", "hostssl replication all 10.0.0.0/24 cert\n", true},
		{"commented out", "#hostssl replication +slavenode samenet cert\n", false},
		{"not TLS", "host replication +slavenode samenet cert\n", false},
		{"md5", "hostssl replication +slavenode samenet md5\n", false},
		{"another role", "hostssl replication +other samenet cert\n", false},
		{"not the replication database", "hostssl all +slavenode samenet cert\n", false},
		{"initdb's defaults", "local replication all trust\nhost replication all 127.0.0.1/32 scram-sha-256\n", false},
	} {
		if _, got := HasReplicationRule(tt.text, "slavenode"); got != tt.want {
			t.Errorf("%s: %v; want %v", tt.name, got, tt.want)
		}
	}
}
