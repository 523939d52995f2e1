package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is a program started by this package, in its own process group, with its
// output appended to a log file.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the program has exited and been reaped
}

// startLogged starts cmd with stdout and stderr appended to logPath.
func startLogged(cmd *exec.Cmd, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("testenv: start %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.exited) }()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends sig to the program and waits up to wait for it to exit; then it kills the whole
// process group. Leftovers of the group are killed in any case.
func (p *process) stop(sig syscall.Signal, wait time.Duration) {
	_ = syscall.Kill(p.pid(), sig)
	select {
	case <-p.exited:
	case <-time.After(wait):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
}

// instanceDir returns dir, created if needed, or a new temporary directory named prefix*.
func instanceDir(dir, prefix string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", prefix)
	}
	return dir, os.MkdirAll(dir, 0o700)
}
