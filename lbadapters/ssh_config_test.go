package lbadapters

import "testing"

// TestSSHConfig: [ssh] defaults, the section's keys and a node's ssh and lbagent overrides.
func TestSSHConfig(t *testing.T) {
	base := "[balancer]\ntype = haproxy\nruntime-api = /run/haproxy/admin.sock\nbackend = xroad\n"
	nodes := `
[node "ss1"]
address = 10.0.0.1
role = primary

[node "ss2"]
address = 10.0.0.2
role = secondary
ssh = admin@jump-ss2.example.org:2222
lbagent = sudo /usr/bin/lbagent

[node "ss3"]
address = 10.0.0.3
role = secondary
ssh = [fd00::3]:2200
`
	c, err := Parse([]byte(base + nodes))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]string{
		"ss1": {"root", "10.0.0.1:22", "lbagent"},
		"ss2": {"admin", "jump-ss2.example.org:2222", "sudo /usr/bin/lbagent"},
		"ss3": {"root", "[fd00::3]:2200", "lbagent"},
	}
	check := func(c *Config, want map[string][3]string) {
		t.Helper()
		for name, w := range want {
			n, err := c.Node(name)
			if err != nil {
				t.Fatal(err)
			}
			if u, a, l := c.SSHAddr(n); [3]string{u, a, l} != w {
				t.Errorf("SSHAddr(%s) = %q %q %q; want %q", name, u, a, l, w)
			}
		}
	}
	check(c, want)
	if c.SSH.KnownHosts != "" || c.SSH.Identity != "" {
		t.Errorf("defaults: known-hosts %q identity %q; want both empty (~/.ssh/known_hosts, ssh-agent)", c.SSH.KnownHosts, c.SSH.Identity)
	}

	c, err = Parse([]byte(base + "\n[ssh]\nuser = xroadadm\nidentity = /etc/lbadapter/id_ed25519\nknown-hosts = /etc/lbadapter/known_hosts\nport = 2022\nlbagent = /opt/lbkit/lbagent\n" + nodes))
	if err != nil {
		t.Fatal(err)
	}
	want["ss1"] = [3]string{"xroadadm", "10.0.0.1:2022", "/opt/lbkit/lbagent"}
	want["ss3"] = [3]string{"xroadadm", "[fd00::3]:2200", "/opt/lbkit/lbagent"}
	check(c, want)
	if c.SSH.KnownHosts != "/etc/lbadapter/known_hosts" || c.SSH.Identity != "/etc/lbadapter/id_ed25519" {
		t.Errorf("[ssh]: %+v", c.SSH)
	}
}
