package haproxy

import (
	"errors"
	"strings"
	"testing"
)

// Answers captured from HAProxy 2.6.
const serversStateAnswer = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
2 be 1 s1 127.0.0.1 0 0 0 1 1 8 2 0 6 0 0 0 - 9 - 0 0 - - 0
2 be 2 s2 127.0.0.1 2 8 1 1 0 1 0 0 0 0 0 0 - 9 - 0 0 - - 0
2 be 3 s3 127.0.0.1 2 9 1 1 0 1 0 0 0 0 0 0 - 9 - 0 0 - - 0

`

const statAnswer = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,check_desc,-,
be,s1,0,0,3,0,,0,0,0,,0,,0,0,0,0,DOWN (agent),0,1,0,"Layer4, connection problem",,
be,s2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/3,100,1,0,,,
be,BACKEND,0,0,3,0,1,0,0,0,0,0,,0,0,0,0,UP,100,1,0,,,

`

func TestParseServersState(t *testing.T) {
	got, err := ParseServersState(serversStateAnswer)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name         string
		op, admin    int
		drain, maint bool
	}{
		{"s1", 0, 0, false, false},
		{"s2", 2, 8, true, false},
		{"s3", 2, 9, false, true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows; want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.BackendName != "be" || g.ServerName != w.name || g.OpState != w.op || g.AdminState != w.admin ||
			g.Drain() != w.drain || g.Maint() != w.maint || g.Addr != "127.0.0.1" {
			t.Errorf("row %d got %+v drain=%v maint=%v; want %+v", i, g, g.Drain(), g.Maint(), w)
		}
		if g.Fields["srv_port"] != "9" {
			t.Errorf("row %d srv_port got %q; want %q", i, g.Fields["srv_port"], "9")
		}
	}
}

func TestParseServersStateColumnsByName(t *testing.T) {
	// A future HAProxy reordering columns: names still find them.
	in := "1\n# srv_admin_state srv_name be_name srv_op_state srv_addr\n8 s9 be2 2 10.0.0.1\n"
	got, err := ParseServersState(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ServerName != "s9" || got[0].BackendName != "be2" || !got[0].Drain() || got[0].OpState != 2 {
		t.Fatalf("got %+v; want s9 of be2, drain, running", got)
	}
}

func TestParseServersStateErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2\n# be_name\n", "unsupported format version"},
		{"1\n# be_name srv_name\nbe\n", "1 fields, header has 2"},
		{"1\n# be_name srv_name srv_op_state\nbe s1 x\n", `column srv_op_state: "x" is not a number`},
		{"1\n", "no header line"},
	}
	for _, tt := range tests {
		_, err := ParseServersState(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseServersState(%q) got %v; want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	got, err := ParseStat(statAnswer)
	if err != nil {
		t.Fatal(err)
	}
	want := []StatRow{
		{Proxy: "be", Server: "s1", Status: "DOWN (agent)", Sessions: 3, Weight: 0},
		{Proxy: "be", Server: "s2", Status: "UP 1/3", Sessions: 0, Weight: 100},
		{Proxy: "be", Server: "BACKEND", Status: "UP", Sessions: 3, Weight: 100},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows; want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Proxy != w.Proxy || g.Server != w.Server || g.Status != w.Status || g.Sessions != w.Sessions || g.Weight != w.Weight {
			t.Errorf("row %d got %+v; want %+v", i, g, w)
		}
	}
	if d := got[0].Fields["check_desc"]; d != "Layer4, connection problem" {
		t.Errorf("quoted field got %q; want %q", d, "Layer4, connection problem")
	}
}

func TestParseStatErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Unknown command.\n", "no header"},
		{"# a,b\n", `no "pxname" column`},
		{"# pxname,svname,scur\nbe,s1,lots\n", `column scur: "lots" is not a number`},
	}
	for _, tt := range tests {
		_, err := ParseStat(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseStat(%q) got %v; want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestKnownError(t *testing.T) {
	tests := []struct {
		answer string
		want   error
	}{
		{"No such backend.\n\n", ErrNoSuchBackend},
		{"Can't find backend.\n\n", ErrNoSuchBackend},
		{"No such server.\n\n", ErrNoSuchServer},
		{"Permission denied\n\n", ErrPermissionDenied},
		{"Require 'backend/server'.\n\n", ErrRequireBackendServer},
		{"Unknown command: 'frob'\n", ErrUnknownCommand},
		{"\n", nil},
		{"1\n# be_id\n", nil},
	}
	for _, tt := range tests {
		if got := knownError(tt.answer); !errors.Is(got, tt.want) || (tt.want == nil && got != nil) {
			t.Errorf("knownError(%q) got %v; want %v", tt.answer, got, tt.want)
		}
	}
}
