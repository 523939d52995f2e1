package targetgroup_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/aws/targetgroup"
)

// blocks returns the fenced code blocks of a Markdown file with the given info string.
func blocks(t *testing.T, path, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDocsIAMPolicy: the policy in docs/aws.md is valid JSON and allows exactly the ELBv2
// actions the adapter calls (its API interface), no more.
func TestDocsIAMPolicy(t *testing.T) {
	js := blocks(t, "../../docs/aws.md", "json")
	if len(js) != 1 {
		t.Fatalf("docs/aws.md has %d json blocks; want the IAM policy", len(js))
	}
	var policy struct {
		Statement []struct {
			Effect string
			Action []string
		}
	}
	if err := json.Unmarshal([]byte(js[0]), &policy); err != nil {
		t.Fatalf("IAM policy: %v", err)
	}
	var allowed []string
	for _, s := range policy.Statement {
		if s.Effect != "Allow" {
			t.Errorf("statement effect %q", s.Effect)
		}
		for _, a := range s.Action {
			allowed = append(allowed, strings.TrimPrefix(a, "elasticloadbalancing:"))
		}
	}
	api := reflect.TypeFor[targetgroup.API]()
	var called []string
	for i := range api.NumMethod() {
		called = append(called, api.Method(i).Name)
	}
	slices.Sort(allowed)
	slices.Sort(called)
	if !slices.Equal(allowed, called) {
		t.Errorf("policy allows %v; the adapter calls %v", allowed, called)
	}
}
