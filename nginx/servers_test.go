package nginx

import (
	"strings"
	"testing"
)

func TestParseKeepsHandWrittenFile(t *testing.T) {
	in := "# xroad 5500, written by hand\n" +
		"server 10.0.0.11:5500 max_fails=2 weight=2;   # ss1\n" +
		"\n" +
		"server 10.0.0.12:5500;\n" +
		"server backup.example:5500 backup;\n"
	f, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.Bytes()); got != in {
		t.Fatalf("unchanged file rewritten:\n%s\nwant\n%s", got, in)
	}
	s := f.Find("10.0.0.11", 5500)
	if s == nil || s.Weight != 2 || len(s.Params) != 1 || s.Params[0] != "max_fails=2" {
		t.Fatalf("ss1 line: got %+v", s)
	}
	s.Operator = true
	want := strings.Replace(in, "server 10.0.0.11:5500 max_fails=2 weight=2;   # ss1",
		"server 10.0.0.11:5500 weight=2 max_fails=2 down; # ss1 # lbkit: down=operator", 1)
	if got := string(f.Bytes()); got != want {
		t.Fatalf("after drain:\n%s\nwant\n%s", got, want)
	}
	// Read back: the mark says who.
	g, err := Parse(f.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if s := g.Find("10.0.0.11", 5500); !s.Operator || s.Agent || s.Comment != " ss1" {
		t.Fatalf("re-read: got %+v", s)
	}
	if f.Find("10.0.0.12", 5577) != nil || f.Find("10.0.0.13", 5500) != nil {
		t.Fatal("Find matched a line of another address or port")
	}
}

func TestParseMarks(t *testing.T) {
	for _, tt := range []struct {
		line            string
		operator, agent bool
		weight, base    int
		reason          string
	}{
		{"server a:1 down;", true, false, 0, 0, ""},
		{"server a:1 down; # lbkit: down=operator", true, false, 0, 0, ""},
		{"server a:1 down; # lbkit: down=agent reason: down #ServerConf is not available", false, true, 0, 0, "down #ServerConf is not available"},
		{"server a:1 weight=50 down; # lbkit: down=operator,agent base-weight=1 reason: up 50%", true, true, 50, 1, "up 50%"},
		{"server a:1; # lbkit: down=agent", false, false, 0, 0, ""}, // down removed by hand
	} {
		f, err := Parse([]byte(tt.line))
		if err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		s := f.Servers()[0]
		if s.Operator != tt.operator || s.Agent != tt.agent || s.Weight != tt.weight || s.BaseWeight != tt.base || s.Reason != tt.reason {
			t.Errorf("%q: got %+v", tt.line, s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"upstream x { server a:1; }", "line 1: \"upstream x { server a:1; }\": want only `server ADDR:PORT [weight=N] [down];` lines and comments"},
		{"# ok\nserver a:1", "line 2: \"server a:1\": want one `server ADDR:PORT ...;` per line"},
		{"server a:1 weight=x;", "line 1: \"server a:1 weight=x;\": bad weight=x"},
	} {
		_, err := Parse([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: got %v; want %s", tt.in, err, tt.want)
		}
	}
}

func TestScale(t *testing.T) {
	s := &Server{Addr: "a:1", Weight: 3}
	s.Scale(50)
	if s.Weight != 150 || s.BaseWeight != 3 {
		t.Fatalf("50%%: got %+v", s)
	}
	s.Scale(100)
	if s.Weight != 300 {
		t.Fatalf("100%%: got %+v", s)
	}
	s.Scale(-1)
	if s.Weight != 3 || s.BaseWeight != 0 {
		t.Fatalf("restore: got %+v", s)
	}
}

func TestParseNginxTime(t *testing.T) {
	for in, want := range map[string]string{"30s": "30s", "10": "10s", "1m30s": "1m30s", "500ms": "500ms", "x": "0s"} {
		if got := parseNginxTime(in).String(); got != want {
			t.Errorf("%s: got %s; want %s", in, got, want)
		}
	}
}
