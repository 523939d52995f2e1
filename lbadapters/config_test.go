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
	wantB := []BalancerConfig{{Name: "balancer", Type: "haproxy", RuntimeAPI: "/run/haproxy/admin.sock", Backend: "xroad", CallTimeout: 5 * time.Second}}
	if !reflect.DeepEqual(c.Balancers, wantB) {
		t.Errorf("balancers: got %+v; want %+v", c.Balancers, wantB)
	}
	want := []Node{
		{Name: "ss1", Address: "10.0.0.11", Role: "primary", HealthPort: 5588, AgentPort: 5589, Server: "ss1", TargetID: "10.0.0.11"},
		{Name: "ss2", Address: "10.0.0.12", Role: "secondary", HealthPort: 5588, AgentPort: 5589, Server: "ss2", TargetID: "10.0.0.12"},
		{Name: "ss3", Address: "10.0.0.13", Role: "secondary", HealthPort: 5588, AgentPort: 5589, Server: "ss3", TargetID: "10.0.0.13"},
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
		{"a.example", Node{Name: "a.example", Address: "127.0.0.2", Role: "secondary", HealthPort: 15588, AgentPort: 15589, Server: "srv-a", TargetID: "127.0.0.2"}},
		{"b", Node{Name: "b", Address: "::1", Role: "standalone", HealthPort: 5588, AgentPort: 5589, Server: "b", TargetID: "::1"}},
	}
	for _, tt := range tests {
		got, err := c.Node(tt.name)
		if err != nil || got != tt.want {
			t.Errorf("Node(%q) = %+v, %v; want %+v, nil", tt.name, got, err, tt.want)
		}
	}
	if len(c.Balancers) != 1 || c.Balancers[0].Type != "haproxy" {
		t.Errorf("balancers: got %+v; want one of type haproxy", c.Balancers)
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

func TestParseSeveralBalancers(t *testing.T) {
	c, err := Parse([]byte(`[balancer "haproxy"]
type        = haproxy
runtime-api = /run/haproxy/admin.sock
backend     = xroad-ss

[balancer "nlb"]
type             = aws
target-group-arn = arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/xroad-ss/6d0ecf831eec9f09
region           = eu-west-1        ; optional
profile          =
endpoint         = http://127.0.0.1:4566

[node "ss2"]
address     = 10.0.0.12
role        = secondary
target-id   = i-0abc12345def67890
target-port = 5500
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []BalancerConfig{
		{Name: "haproxy", Type: "haproxy", RuntimeAPI: "/run/haproxy/admin.sock", Backend: "xroad-ss", CallTimeout: DefaultCallTimeout},
		{Name: "nlb", Type: "aws", TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/xroad-ss/6d0ecf831eec9f09",
			Region: "eu-west-1", Endpoint: "http://127.0.0.1:4566", CallTimeout: DefaultAWSCallTimeout},
	}
	if !reflect.DeepEqual(c.Balancers, want) {
		t.Errorf("balancers:\n got %+v\nwant %+v", c.Balancers, want)
	}
	wantN := Node{Name: "ss2", Address: "10.0.0.12", Role: "secondary", HealthPort: 5588, AgentPort: 5589, Server: "ss2",
		TargetID: "i-0abc12345def67890", TargetPort: 5500}
	if c.Nodes[0] != wantN {
		t.Errorf("node: got %+v; want %+v", c.Nodes[0], wantN)
	}
	if b, ok := c.Balancer("nlb"); !ok || b.Type != "aws" {
		t.Errorf("Balancer(nlb) = %+v, %v", b, ok)
	}
}

func TestParseTargetGroupARN(t *testing.T) {
	got, err := ParseTargetGroupARN("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/xroad-ss/6d0ecf831eec9f09")
	want := TargetGroupARN{Partition: "aws", Region: "eu-west-1", Account: "123456789012", Name: "xroad-ss", ID: "6d0ecf831eec9f09"}
	if err != nil || got != want {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"", "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/net/x/1", "arn:aws:ec2:eu-west-1:1:targetgroup/x/1", "xroad-ss"} {
		if _, err := ParseTargetGroupARN(bad); err == nil {
			t.Errorf("ParseTargetGroupARN(%q) accepted", bad)
		}
	}
}
