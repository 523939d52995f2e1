package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// signalTree sends sig to pid and then to all its descendants (PostgreSQL's backends call
// setsid, so a process group signal does not reach them). The parent goes first, so a
// stopped or killed parent starts no new child in between.
func signalTree(pid int, sig syscall.Signal) error {
	kids := children(pid)
	err := syscall.Kill(pid, sig)
	for _, k := range kids {
		_ = signalTree(k, sig)
	}
	return err
}

// children lists the direct children of pid from /proc.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			if c, err := strconv.Atoi(filepath.Base(filepath.Dir(s))); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
