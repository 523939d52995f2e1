package lbadapters

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsConfigBlocks: every cluster config block (an ini block with a [balancer] or [node]
// section) in README.md and docs/lbadapter.md loads as printed. docs/aws.md has its own test
// in aws/targetgroup.
func TestDocsConfigBlocks(t *testing.T) {
	re := regexp.MustCompile("(?s)```ini\n(.*?)```")
	found := 0
	for _, path := range []string{"../README.md", "../docs/lbadapter.md", "../docs/upgrade.md"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			text := m[1]
			if !strings.Contains(text, "[balancer") && !strings.Contains(text, "[node") {
				continue // lbagent.ini and other files
			}
			found++
			if _, err := Parse([]byte(text)); err != nil {
				t.Errorf("%s: cluster config block does not load: %v\n%s", path, err, text)
			}
		}
	}
	if found < 2 {
		t.Errorf("found %d cluster config blocks; want the ones in docs/lbadapter.md", found)
	}
}
