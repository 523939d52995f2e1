package docsblocks

import (
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	doc := "# Title\n\n```sh\nmake demo\n```\n\ntext\n\n" + FragmentMarker + "\n\n```haproxy\nbackend b\n    server s 127.0.0.1:1\n```\n" +
		"<!-- docs-test: skip: shows a mistake on purpose -->\n```ini\n[lbagent]\nlisn = x\n```\n" +
		"```\n[node \"ss1\"]\naddress = 10.0.0.11\n```\n"
	blocks, err := Markdown("doc.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line     int
		lang     string
		kind     Kind
		text     string
		fragment bool
		skip     string
	}{
		{4, "sh", NotConfig, "make demo\n", false, ""},
		{12, "haproxy", HAProxy, "backend b\n    server s 127.0.0.1:1\n", true, ""},
		{17, "ini", LBAgentINI, "[lbagent]\nlisn = x\n", false, "shows a mistake on purpose"},
		{21, "", Unlabelled, "[node \"ss1\"]\naddress = 10.0.0.11\n", false, ""},
	}
	if len(blocks) != len(want) {
		t.Fatalf("got %d blocks %+v; want %d", len(blocks), blocks, len(want))
	}
	for i, w := range want {
		b := blocks[i]
		if b.Line != w.line || b.Lang != w.lang || b.Kind != w.kind || b.Text != w.text || b.Fragment != w.fragment || b.Skip != w.skip {
			t.Errorf("block %d: got %+v; want %+v", i, b, w)
		}
	}
	if g := Guess(blocks[3].Text); g != ClusterINI {
		t.Errorf("Guess of an unlabelled cluster block: %q", g)
	}
	if got := blocks[1].Where(); got != "doc.md:12" {
		t.Errorf("Where: %q", got)
	}
}

func TestMarkdownErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"a\n```ini\n[lbagent]\n", "doc.md:2: code block not closed"},
		{"<!-- docs-test: skip: -->\n```ini\n[x]\n```\n", "doc.md:1: skip marker without a reason"},
		{"<!-- docs-test: skipp: x -->\n```ini\n[x]\n```\n", "doc.md:1: unknown marker"},
	}
	for _, tt := range tests {
		_, err := Markdown("doc.md", tt.doc)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v; want %q", tt.doc, err, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		lang, text string
		want       Kind
	}{
		{"ini", "[lbagent]\ncheck-timeout = 5s\n", LBAgentINI},
		{"ini", "# <xroad-dir>/conf.d/lbagent.ini (cluster-wide) or conf.d/node.ini\n[replication]\n", LBAgentINI},
		{"ini", "[agent-check]\nlisten = off\n", LBAgentINI},
		{"ini", "[node]\ntype = slave\n[sync]\nprimary = ss1\n", NodeINI},
		{"ini", "[proxy]\nhealth-check-port = 5588\n", LocalINI},
		{"ini", "[balancer]\ntype = haproxy\n", ClusterINI},
		{"ini", "[node ss1]\naddress = 10.0.0.11\n", ClusterINI},
		{"ini", "; /etc/lbadapter/cluster.ini on the nginx host\n[balancer \"a\"]\n", ClusterINI},
		{"ini", "[whatever]\nx = 1\n", Unknown},
		{"cfg", "global\n    maxconn 10\n", HAProxy},
		{"haproxy", "backend x\n", HAProxy},
		{"conf", "events {}\nhttp {\n}\n", Nginx},
		{"nginx", "# a servers file\nserver 10.0.0.11:5500;\nserver 10.0.0.12:5500 down;\n", NginxServers},
		{"nginx", "upstream u {\n    server 10.0.0.11:5500;\n}\n", Nginx},
		{"json", "{}", JSON},
		{"sh", "make demo", NotConfig},
		{"console", "$ lbadapter status", NotConfig},
		{"text", "NODE ROLE", NotConfig},
		{"yaml", "a: b", Unsupported},
		{"", "[lbagent]", Unlabelled},
	}
	for _, tt := range tests {
		if got := Classify(tt.lang, tt.text); got != tt.want {
			t.Errorf("Classify(%q, %q) = %q; want %q", tt.lang, tt.text, got, tt.want)
		}
	}
}

func TestExample(t *testing.T) {
	tests := []struct {
		file string
		want Kind
	}{
		{"examples/cluster.ini", ClusterINI},
		{"haproxy/examples/haproxy.cfg", HAProxy},
		{"nginx/examples/nginx-stream.conf", Nginx},
		{"nginx/examples/xroad-5500.servers", NginxServers},
		{"examples/notes.txt", Unknown},
	}
	for _, tt := range tests {
		text := "[balancer]\ntype = haproxy\n"
		if got := Example(tt.file, text).Kind; got != tt.want {
			t.Errorf("Example(%q) = %q; want %q", tt.file, got, tt.want)
		}
	}
}
