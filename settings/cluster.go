package settings

import (
	"time"
)

// ClusterSchema is every section and key of lbadapter's cluster config (cluster.ini). Adding
// a key is one line here; lbadapters reads it. Values are checked here as far as they do not
// depend on other keys (lbadapters checks which keys apply to which balancer type).
var ClusterSchema = Schema{
	{Name: "balancer", Named: true, NameOptional: true, Keys: []Key{
		{"type", OneOf("haproxy", "aws", "nginx")},
		{"timeout", Duration(10*time.Millisecond, 10*time.Minute)},
		// haproxy
		{"runtime-api", Text()},
		{"backend", Text()},
		// aws
		{"target-group-arn", Text()},
		{"region", Text()},
		{"profile", Text()},
		{"endpoint", Text()},
		// nginx
		{"nginx-conf", AbsPath()},
		{"servers-file", AbsPath()},
		{"port", Port()},
		{"pid-file", AbsPath()},
	}},
	{Name: "node", Named: true, Keys: []Key{
		{"address", Text()},
		{"role", OneOf("primary", "secondary", "standalone")},
		{"server", Text()},
		{"health-port", Port()},
		{"agent-port", Port()},
		{"target-id", Text()},
		{"target-port", Port()},
		// lbadapter upgrade: [user@]host[:port] and the commands that run lbagent
		{"ssh", Text()},
		{"lbagent", Text()},
		{"db-lbagent", Text()},
	}},
	{Name: "ssh", Keys: []Key{
		{"user", Text()},
		{"identity", AbsPath()},
		{"known-hosts", AbsPath()},
		{"port", Port()},
		{"lbagent", Text()},
		{"db-lbagent", Text()},
	}},
}

// ParseCluster parses a cluster config (path names it in errors) by our rules and checks it
// against ClusterSchema. lbadapters.Parse and lbadapters.Load build the cluster from it.
func ParseCluster(path string, data []byte) (*File, error) {
	f, err := Parse(path, data, OurRules)
	if err != nil {
		return nil, err
	}
	if err := ClusterSchema.Validate(f); err != nil {
		return nil, err
	}
	return f, nil
}
