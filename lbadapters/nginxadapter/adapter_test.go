package nginxadapter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
	"github.com/xroad-lb/lbkit/testenv"
)

func TestServerState(t *testing.T) {
	for _, tt := range []struct {
		line   string
		state  lbadapters.State
		status string
		desc   string
	}{
		{"server a:1;", lbadapters.StateUp, "UP", ""},
		{"server a:1 down; # lbkit: down=operator", lbadapters.StateDrain, "DRAIN (operator)", ""},
		{"server a:1 down;", lbadapters.StateDrain, "DRAIN (operator)", ""},
		{"server a:1 down; # lbkit: down=agent reason: drain", lbadapters.StateDown, "DOWN (agent)", "agent: drain"},
		{"server a:1 down; # lbkit: down=operator,agent reason: drain", lbadapters.StateDrain, "DRAIN (operator)", ""},
		{"server a:1 weight=50; # lbkit: base-weight=1 reason: up 50%", lbadapters.StateUp, "UP weight=50", ""},
	} {
		f, err := nginx.Parse([]byte(tt.line))
		if err != nil {
			t.Fatal(err)
		}
		got := ServerState(f.Servers()[0])
		if got.State != tt.state || got.Status != tt.status || got.Description != tt.desc {
			t.Errorf("%q: got %+v; want %s %q %q", tt.line, got, tt.state, tt.status, tt.desc)
		}
	}
}

// TestRefusedDrain: nginx -t (the real one) refuses the configuration: Drain restores the
// servers file, does not signal anything, and returns an error that lbadapter maps to exit 3
// with nginx's own line.
func TestRefusedDrain(t *testing.T) {
	bin := testenv.Require(t, "nginx")
	dir := t.TempDir()
	servers := filepath.Join(dir, "x.servers")
	orig := "server 127.0.0.2:5500;\nserver 127.0.0.3:5500 max_fails=many;\n"
	if err := os.WriteFile(servers, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte("load_module "+testenv.ModulePath("ngx_stream_module.so")+";\npid "+dir+"/nginx.pid;\n"+
		"error_log "+dir+"/error.log;\nevents {}\nstream { upstream u { include "+servers+"; } server { listen 127.0.0.1:1; proxy_pass u; } }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(lbadapters.BalancerConfig{Type: lbadapters.TypeNginx, NginxConf: conf, ServersFile: servers, Port: 5500})
	if err != nil {
		t.Fatal(err)
	}
	a.nginx.Bin = bin
	err = a.Drain(context.Background(), lbadapters.Node{Name: "ss1", Address: "127.0.0.2"})
	if !errors.Is(err, lbadapters.ErrDenied) || !errors.Is(err, nginx.ErrRefused) ||
		!strings.Contains(err.Error(), `nginx -t refused the configuration: nginx: [emerg] invalid parameter "max_fails=many" in `+servers+":2") {
		t.Fatalf("got %v; want nginx's refusal as ErrDenied", err)
	}
	if b, _ := os.ReadFile(servers); string(b) != orig {
		t.Errorf("servers file not restored:\n%s", b)
	}
	err = a.Drain(context.Background(), lbadapters.Node{Name: "ss9", Address: "127.0.0.9"})
	if !errors.Is(err, lbadapters.ErrNotFound) || !strings.Contains(err.Error(), "has no line `server 127.0.0.9:5500;` for node ss9") {
		t.Errorf("unknown node: got %v", err)
	}
}
