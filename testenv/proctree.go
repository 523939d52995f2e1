package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// signalTree sends sig to pid and then to all its descendants (PostgreSQL's backends and
// sshd's sessions call setsid, so a process group signal does not reach them). The parent
// goes first, so a stopped or killed parent starts no new child in between.
func signalTree(pid int, sig syscall.Signal) error {
	kids := descendants(pid)
	err := syscall.Kill(pid, sig)
	for _, k := range kids {
		_ = syscall.Kill(k, sig)
	}
	return err
}

// descendants lists the process ids below pid, read from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut after the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		p, perr := strconv.Atoi(filepath.Base(filepath.Dir(s)))
		if len(f) < 2 || perr != nil {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
			if _, ok := parent[q]; !ok {
				break
			}
		}
	}
	return out
}
