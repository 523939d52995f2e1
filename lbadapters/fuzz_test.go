package lbadapters

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input gives a config that passes its own validation, or an error; never a
// panic.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.ini")
	seeds = append(seeds, "../examples/cluster.ini")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if len(c.Nodes) == 0 || len(c.Balancers) == 0 {
			t.Fatalf("accepted a config without nodes or balancers: %+v", c)
		}
		for _, b := range c.Balancers {
			if b.Name == "" || b.Type == "" || b.CallTimeout <= 0 {
				t.Fatalf("accepted an invalid balancer: %+v", b)
			}
		}
		for _, n := range c.Nodes {
			if n.Address == "" || n.Server == "" || n.HealthPort < 1 || n.HealthPort > 65535 {
				t.Fatalf("accepted an invalid node: %+v", n)
			}
			if got, err := c.Node(n.Name); err != nil || got != n {
				t.Fatalf("Node(%q) = %+v, %v", n.Name, got, err)
			}
		}
	})
}
