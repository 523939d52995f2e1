package watch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
	"github.com/xroad-lb/lbkit/nginx/watch"
	"github.com/xroad-lb/lbkit/testenv"
)

// TestStepWithNginx drives a real nginx (stream upstream, worker_processes 2) through
// Watcher.Step with scripted agent answers: a file is rewritten and nginx reloaded only on a
// change, an operator's down is kept, weights are written in hundredths, and a change that
// nginx -t refuses is put back and reported once.
func TestStepWithNginx(t *testing.T) {
	testenv.Require(t, "nginx")
	dir := t.TempDir()
	servers := filepath.Join(dir, "x.servers")
	orig := "# hand-written\nserver 127.0.0.2:5500;\nserver 127.0.0.3:5500 weight=2;\nserver 127.0.0.4:5500 down;\nserver 127.0.0.9:5500 backup;\n"
	if err := os.WriteFile(servers, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	ng := testenv.NewNginx(t, testenv.NginxOptions{Workers: "2", WaitFor: listen,
		Stream: fmt.Sprintf("upstream u { include %s; }\nserver { listen %s; proxy_pass u; }", servers, listen)})
	nodes := []lbadapters.Node{{Name: "ss1", Address: "127.0.0.2"}, {Name: "ss2", Address: "127.0.0.3"}, {Name: "ss3", Address: "127.0.0.4"}}
	var mu sync.Mutex
	answers := map[string]string{"ss1": "up\n", "ss2": "up\n", "ss3": "up\n"}
	var events []watch.Event
	w, err := watch.New(nodes, []watch.Upstream{{Name: "edge", Nginx: nginx.Instance{Conf: ng.Conf}, File: servers, Port: 5500}},
		watch.Options{Fall: 2, Rise: 2,
			Poll: func(_ context.Context, n lbadapters.Node) ([]byte, error) {
				mu.Lock()
				defer mu.Unlock()
				return []byte(answers[n.Name]), nil
			},
			Log: func(e watch.Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	step := func(set map[string]string) []watch.Event {
		t.Helper()
		mu.Lock()
		for k, v := range set {
			answers[k] = v
		}
		mu.Unlock()
		events = nil
		w.Step(context.Background())
		return events
	}
	file := func() string {
		b, err := os.ReadFile(servers)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	reloads := func(ev []watch.Event) int {
		n := 0
		for _, e := range ev {
			if strings.Contains(e.Change, "nginx reloaded") {
				n++
			}
		}
		return n
	}

	if ev := step(nil); len(ev) != 0 || file() != orig {
		t.Fatalf("all up: events %v, file\n%s", ev, file())
	}
	ev := step(map[string]string{"ss1": "drain\n", "ss3": "drain\n"})
	if reloads(ev) != 1 || len(ev) != 3 {
		t.Errorf("drain: events %v; want ss1 down, ss3 down, one reload", ev)
	}
	want := strings.NewReplacer("server 127.0.0.2:5500;", "server 127.0.0.2:5500 down; # lbkit: down=agent reason: drain",
		"server 127.0.0.4:5500 down;", "server 127.0.0.4:5500 down; # lbkit: down=operator,agent reason: drain").Replace(orig)
	if file() != want {
		t.Errorf("after drain:\n%s\nwant\n%s", file(), want)
	}
	if ev := step(nil); len(ev) != 0 {
		t.Errorf("no change: events %v; want none (no rewrite, no reload)", ev)
	}
	// ss1 leaves maintenance ("up ready"), ss3 too: the operator's down stays; ss2 at 50%.
	ev = step(map[string]string{"ss1": "up ready\n", "ss3": "up ready\n", "ss2": "up 50%\n"})
	if reloads(ev) != 1 {
		t.Errorf("ready: events %v; want one reload", ev)
	}
	want = "# hand-written\nserver 127.0.0.2:5500 weight=100; # lbkit: base-weight=1\n" +
		"server 127.0.0.3:5500 weight=100; # lbkit: base-weight=2\n" +
		"server 127.0.0.4:5500 weight=100 down; # lbkit: down=operator base-weight=1\n" +
		"server 127.0.0.9:5500 backup;\n"
	if file() != want {
		t.Errorf("after ready and 50%%:\n%s\nwant\n%s", file(), want)
	}
	// A hand edit nginx refuses: the watcher's next change is put back, reported once.
	broken := file() + "server 127.0.0.8:5500 max_fails=many;\n"
	if err := os.WriteFile(servers, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	ev = step(map[string]string{"ss2": "up 100%\n"})
	if len(ev) != 2 || ev[1].Err == nil || !strings.Contains(ev[1].Err.Error(), `nginx: [emerg] invalid parameter "max_fails=many"`) {
		t.Errorf("refused: events %v; want the weight change and nginx's refusal", ev)
	}
	if file() != broken {
		t.Errorf("refused change not put back:\n%s", file())
	}
	if ev := step(nil); len(ev) != 0 {
		t.Errorf("same refused change again: events %v; want none", ev)
	}
	// The hand edit is fixed: the change goes through.
	if err := os.WriteFile(servers, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	if ev := step(nil); reloads(ev) != 1 || file() != strings.Replace(orig, "server 127.0.0.4:5500 down;", "server 127.0.0.4:5500 down; # lbkit: down=operator", 1) {
		t.Errorf("after the fix: events %v, file\n%s", ev, file())
	}
	if !ng.Running() {
		t.Fatalf("nginx stopped:\n%s", ng.ErrorLog(10))
	}
}
