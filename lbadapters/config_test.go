package lbadapters

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadExample(t *testing.T) {
	c, err := Load("../examples/cluster.ini")
	if err != nil {
		t.Fatal(err)
	}
	wantB := BalancerConfig{Type: "haproxy", RuntimeAPI: "/run/haproxy/admin.sock", Backend: "xroad-ss", CallTimeout: 5 * time.Second}
	if c.Balancer != wantB {
		t.Errorf("balancer: got %+v; want %+v", c.Balancer, wantB)
	}
	want := []Node{
		{Name: "ss1", Address: "10.0.0.11", Role: "primary", HealthPort: 5588, AgentPort: 5589, Server: "ss1"},
		{Name: "ss2", Address: "10.0.0.12", Role: "secondary", HealthPort: 5588, AgentPort: 5589, Server: "ss2"},
		{Name: "ss3", Address: "10.0.0.13", Role: "secondary", HealthPort: 5588, AgentPort: 5589, Server: "ss3"},
	}
	if !reflect.DeepEqual(c.Nodes, want) {
		t.Errorf("nodes: got %+v; want %+v", c.Nodes, want)
	}
}

func TestParseNodeForms(t *testing.T) {
	c, err := Parse([]byte(`[balancer]
type = HAProxy
runtime-api = ipv4@127.0.0.1:9999
backend = b
[node "a.example"]
address = 127.0.0.2
role = Secondary
health-port = 15588
agent-port = 15589
server = srv-a
[node b]
address = ::1
role = standalone
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want Node
	}{
		{"a.example", Node{Name: "a.example", Address: "127.0.0.2", Role: "secondary", HealthPort: 15588, AgentPort: 15589, Server: "srv-a"}},
		{"b", Node{Name: "b", Address: "::1", Role: "standalone", HealthPort: 5588, AgentPort: 5589, Server: "b"}},
	}
	for _, tt := range tests {
		got, err := c.Node(tt.name)
		if err != nil || got != tt.want {
			t.Errorf("Node(%q) = %+v, %v; want %+v, nil", tt.name, got, err, tt.want)
		}
	}
	if c.Balancer.Type != "haproxy" {
		t.Errorf("type: got %q; want haproxy", c.Balancer.Type)
	}
	_, err = c.Node("nope")
	if !errors.Is(err, ErrUnknownNode) {
		t.Errorf("Node(nope) error = %v; want ErrUnknownNode", err)
	}
	if err != nil && !strings.Contains(err.Error(), "a.example, b") {
		t.Errorf("Node(nope) error %q does not list the known nodes", err)
	}
}

// TestParseInvalid reads testdata/invalid-X.ini and expects exactly the error in invalid-X.err.
func TestParseInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.ini")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".ini"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".ini") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data)
			if err == nil {
				t.Fatalf("Parse accepted %s; want error %q", f, want)
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Errorf("got %q; want %q", got, strings.TrimSpace(string(want)))
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.ini"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v; want an error wrapping os.ErrNotExist", err)
	}
}
