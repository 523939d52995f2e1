package settings

import (
	"strings"
	"testing"
)

// FuzzParse: whatever the bytes, the parser returns a file or an error naming the file,
// never panics; every entry's line is within the file and every key is non-empty.
func FuzzParse(f *testing.F) {
	f.Add("[proxy]\nhealth-check-port=5588 ; c\nhealth-check-interface=0.0.0.0\n")
	f.Add("[proxy\nhealth-check-port\n")
	f.Add("[lbagent]\nstatus-token = \"a\\\"b ; c\" \\\n  more\n")
	f.Add("[node \"ss1\"]\naddress = 10.0.0.1\n")
	f.Add("k = '\\\n")
	f.Fuzz(func(t *testing.T, content string) {
		lines := strings.Count(content, "\n") + 1
		for _, r := range []Rules{XRoadRules, OurRules} {
			file, err := Parse("f.ini", []byte(content), r)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "f.ini") {
					t.Fatalf("error %q does not name the file", err)
				}
				continue
			}
			for _, s := range file.Sections {
				for _, e := range s.Entries {
					if e.Key == "" || e.Line < 1 || e.Line > lines {
						t.Fatalf("entry %+v of a %d-line file", e, lines)
					}
				}
			}
			if r == OurRules {
				_ = LbagentSchema.Validate(file)
				_ = ClusterSchema.Validate(file)
			}
		}
	})
}
