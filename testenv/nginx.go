package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// NginxOptions shape an nginx instance.
type NginxOptions struct {
	// HTTP is the content of the http { } block (server blocks, upstreams).
	HTTP string
	// Main is extra main-context configuration (load_module lines, ...).
	Main string
	// Stream is the content of a stream { } block (TCP upstreams); the stream module is
	// loaded when it is set.
	Stream string
	// Lua loads Debian's http Lua module (ndk + ngx_http_lua).
	Lua bool
	// Workers is worker_processes; default "auto".
	Workers string
	// WaitFor is a host:port that must accept connections before StartNginx returns.
	WaitFor string
}

// Nginx is a running nginx started by this package.
type Nginx struct {
	Dir     string
	Conf    string
	PIDFile string // from the config's pid directive
	proc    *process
}

// NewNginx starts nginx for a test and stops it at cleanup.
func NewNginx(t testing.TB, o NginxOptions) *Nginx {
	t.Helper()
	Require(t, "nginx")
	return forTest(t, func(ctx context.Context) (*Nginx, error) { return StartNginx(ctx, o) })
}

// StartNginx writes a configuration under a new temp dir and runs nginx in the foreground
// (daemon off) with it.
func StartNginx(ctx context.Context, o NginxOptions) (*Nginx, error) {
	bin, err := Find("nginx")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testenv-nginx-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if o.Workers == "" {
		o.Workers = "auto"
	}
	main, stream := o.Main, ""
	if o.Lua {
		main = "load_module " + ModulePath("ndk_http_module.so") + ";\nload_module " + ModulePath("ngx_http_lua_module.so") + ";\n" + main
	}
	if o.Stream != "" {
		main = "load_module " + ModulePath("ngx_stream_module.so") + ";\n" + main
		stream = "stream {\n" + o.Stream + "\n}\n"
	}
	conf := fmt.Sprintf(`%s
worker_processes %s;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[3]s/body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    %[4]s
}
%[5]s`, main, o.Workers, dir, o.HTTP, stream)
	n := &Nginx{Dir: dir, Conf: filepath.Join(dir, "nginx.conf"), PIDFile: filepath.Join(dir, "nginx.pid")}
	if err := os.WriteFile(n.Conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if n.proc, err = startLogged(exec.Command(bin, "-p", dir, "-c", n.Conf, "-g", "daemon off;"),
		filepath.Join(dir, "stderr.log")); err != nil {
		return nil, err
	}
	if o.WaitFor != "" {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", o.WaitFor, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-n.proc.exited:
				return nil, fmt.Errorf("testenv: nginx exited:\n%s\n%s", tail(filepath.Join(dir, "stderr.log"), 20), tail(filepath.Join(dir, "error.log"), 20))
			default:
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				_ = n.Close()
				return nil, errors.New("testenv: nginx not listening on " + o.WaitFor)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return n, nil
}

// ModulePath is the absolute path of a Debian nginx module (a config given with -c and -p
// does not find "modules/..." under the default prefix).
func ModulePath(name string) string { return "/usr/share/nginx/modules/" + name }

// ErrorLog returns the last lines of nginx's error log.
func (n *Nginx) ErrorLog(lines int) string { return tail(filepath.Join(n.Dir, "error.log"), lines) }

// Running reports whether the master is still running.
func (n *Nginx) Running() bool {
	select {
	case <-n.proc.exited:
		return false
	default:
		return true
	}
}

// Reload makes nginx re-read its configuration gracefully (old workers finish their
// connections).
func (n *Nginx) Reload() error { return syscall.Kill(n.proc.pid(), syscall.SIGHUP) }

// Close stops nginx (quick shutdown) and removes its directory.
func (n *Nginx) Close() error {
	n.proc.stop(syscall.SIGTERM, 10*time.Second)
	return os.RemoveAll(n.Dir)
}
