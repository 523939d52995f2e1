package haproxy

import (
	"strings"
	"testing"
)

func FuzzParseAgentLine(f *testing.F) {
	for _, s := range []string{"up\n", "down #text, with commas\n", "75%,maxconn:30,maint,down\n",
		"UP READY 100%\r", "drain", "#\n", ",,\t\n", "maxconn:99999999999999999999\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAgentLine(b)
		if err != nil {
			return
		}
		// What we render, we parse back to the same reply (text is cleaned on the way out).
		r.Text = cleanText(r.Text)
		out := r.Append(nil)
		if n := strings.Count(string(out), "\n"); n != 1 || out[len(out)-1] != '\n' {
			t.Fatalf("Append(%+v) = %q: want exactly one trailing newline", r, out)
		}
		back, err := ParseAgentLine(out)
		if err != nil {
			t.Fatalf("ParseAgentLine(Append(%+v)) = %v", r, err)
		}
		if back != r {
			t.Fatalf("round trip of %q: got %+v; want %+v", out, back, r)
		}
	})
}

func FuzzParseServersState(f *testing.F) {
	f.Add(serversStateAnswer)
	f.Add("1\n# be_name srv_name srv_op_state srv_admin_state\nbe s 2 8\n")
	f.Add("1\n#\n")
	f.Add("No such backend.\n")
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := ParseServersState(s)
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Maint() && r.Drain() {
				t.Fatalf("%+v is both maint and drain", r)
			}
			if r.Fields == nil {
				t.Fatalf("%+v has no fields", r)
			}
		}
	})
}

func FuzzParseStat(f *testing.F) {
	f.Add(statAnswer)
	f.Add("# pxname,svname,scur,weight,status\nbe,s1,1,2,UP\n")
	f.Add("# pxname,svname\n\"unterminated,x\n")
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := ParseStat(s)
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Fields["pxname"] != r.Proxy || r.Fields["svname"] != r.Server {
				t.Fatalf("row %+v: names do not match fields", r)
			}
		}
	})
}
