package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// Require finds program on PATH or in the extra directories. When it is missing the test is
// skipped, or failed when CI=true: in CI every program must have been installed. Under
// go test -short the test is skipped whether the program is there or not: short tests
// (make test-short) start no external program.
func Require(t testing.TB, program string, extraDirs ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s: skipped with -short", program)
	}
	path, err := Find(program, extraDirs...)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: run scripts/install-deps.sh)", err)
		}
		t.Skipf("%v (run scripts/install-deps.sh)", err)
	}
	return path
}

// Find looks program up on PATH, in /usr/sbin and /sbin, and in extraDirs.
func Find(program string, extraDirs ...string) (string, error) {
	if p, err := exec.LookPath(program); err == nil {
		return p, nil
	}
	for _, d := range append([]string{"/usr/sbin", "/sbin", "/usr/local/sbin"}, extraDirs...) {
		p := filepath.Join(d, program)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("testenv: program %q not found", program)
}

// handedOut holds the ports FreePort returned in this process: an instance keeps its port
// across Stop and Start, so the port is not handed to another instance while it is stopped.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a TCP port on host that was free a moment ago and that FreePort has not
// returned before in this process.
func FreePort(host string) (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("testenv: find free port on %s: %w", host, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("testenv: find free port on %s: every port offered was handed out before", host)
}

// Secret returns a random password (32 hex digits), one per instance: a server or node of
// another test that takes over a stopped instance's port does not accept its credentials.
func Secret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// FreePortOn returns a TCP port that was free on every one of hosts a moment ago.
func FreePortOn(hosts ...string) (int, error) {
	for range 20 {
		p, err := FreePort(hosts[0])
		if err != nil {
			return 0, err
		}
		free := true
		for _, h := range hosts[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return p, nil
		}
	}
	return 0, fmt.Errorf("testenv: no port free on all of %v", hosts)
}

// account is a system user that a program runs as (PostgreSQL refuses to run as root).
type account struct {
	name     string
	uid, gid int
}

// dropTo returns the account to run as: the named user when we are root, nil otherwise
// (then the program runs as ourselves).
func dropTo(name string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("testenv: running as root needs the system user %q: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &account{name: name, uid: uid, gid: gid}, nil
}

func (a *account) apply(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if a != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}
		cmd.Env = append(os.Environ(), "HOME=/tmp", "USER="+a.name, "LOGNAME="+a.name)
	}
}

// chownTree gives dir and everything in it to the account.
func (a *account) chownTree(dir string) error {
	if a == nil {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, a.uid, a.gid)
	})
}

// globNewest returns the lexically last match of pattern, or "".
func globNewest(pattern string) string {
	m, _ := filepath.Glob(pattern)
	if len(m) == 0 {
		return ""
	}
	sort.Strings(m)
	return m[len(m)-1]
}

// forTest starts something for a test: a failure to start fails the test, and whatever
// started is closed at the test's cleanup.
func forTest[T interface{ Close() error }](t testing.TB, start func(context.Context) (T, error)) T {
	t.Helper()
	v, err := start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}
