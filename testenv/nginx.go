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
	// Workers is worker_processes; default "auto".
	Workers string
	// WaitFor is a host:port that must accept connections before StartNginx returns.
	WaitFor string
}

// Nginx is a running nginx started by this package.
type Nginx struct {
	Dir  string
	Conf string
	proc *process
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
`, o.Main, o.Workers, dir, o.HTTP)
	n := &Nginx{Dir: dir, Conf: filepath.Join(dir, "nginx.conf")}
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

// Reload makes nginx re-read its configuration gracefully (old workers finish their
// connections).
func (n *Nginx) Reload() error { return syscall.Kill(n.proc.pid(), syscall.SIGHUP) }

// Close stops nginx (quick shutdown) and removes its directory.
func (n *Nginx) Close() error {
	n.proc.stop(syscall.SIGTERM, 10*time.Second)
	return os.RemoveAll(n.Dir)
}
