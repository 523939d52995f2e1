package haproxy

import (
	"errors"
	"strings"
	"testing"
)

func TestAgentReplyAppend(t *testing.T) {
	tests := []struct {
		r    AgentReply
		want string
	}{
		{AgentReply{Health: "up"}, "up\n"},
		{AgentReply{Health: "up", Weight: 75, WeightSet: true}, "up 75%\n"},
		{AgentReply{Health: "up", Admin: "ready", Weight: 100, WeightSet: true, Maxconn: 30}, "up ready 100% maxconn:30\n"},
		{AgentReply{Health: "down", Text: "Global configuration is expired"}, "down #Global configuration is expired\n"},
		{AgentReply{Admin: "drain"}, "drain\n"},
		{AgentReply{Health: "down", Text: "line1\nline2\r"}, "down #line1 line2\n"},
		{AgentReply{Health: "down", Text: "  \n "}, "down\n"},
		{AgentReply{}, "\n"},
	}
	for _, tt := range tests {
		if got := string(tt.r.Append(nil)); got != tt.want {
			t.Errorf("%+v.Append got %q; want %q", tt.r, got, tt.want)
		}
	}
	long := AgentReply{Health: "down", Text: strings.Repeat("é", 300)}
	if got := long.String(); len(got) > len("down #")+maxText || !strings.HasSuffix(got, "é") {
		t.Errorf("long text got %d bytes ending %q; want at most %d bytes of whole runes", len(got), got[len(got)-3:], maxText+6)
	}
}

func TestParseAgentLine(t *testing.T) {
	tests := []struct {
		in      string
		want    AgentReply
		wantErr string
	}{
		{"up\n", AgentReply{Health: "up"}, ""},
		{"UP Ready 75%\r\n", AgentReply{Health: "up", Admin: "ready", Weight: 75, WeightSet: true}, ""},
		{"75%,maxconn:30,maint,down\n", AgentReply{Health: "down", Admin: "maint", Weight: 75, WeightSet: true, Maxconn: 30}, ""},
		{"up down\n", AgentReply{Health: "down"}, ""},
		{"down #Global configuration is expired\nup\n", AgentReply{Health: "down", Text: "Global configuration is expired"}, ""},
		{"drain\tup\n", AgentReply{Health: "up", Admin: "drain"}, ""},
		{"\n", AgentReply{}, ""},
		{"up", AgentReply{}, "incomplete line"},
		{"up sideways\n", AgentReply{Health: "up"}, `unknown word "sideways"`},
		{"x%\n", AgentReply{}, `bad weight "x%"`},
		{"maxconn:-1\n", AgentReply{}, `bad maxconn "maxconn:-1"`},
	}
	for _, tt := range tests {
		got, err := ParseAgentLine([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAgentLine(%q) error got %v; want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseAgentLine(%q) got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseAgentLine([]byte("up")); !errors.Is(err, ErrIncompleteLine) {
		t.Errorf("got %v; want ErrIncompleteLine", err)
	}
}
