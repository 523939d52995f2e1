// Package confsync replicates a directory tree (X-Road's /etc/xroad) from the primary node to a
// secondary over SSH and SFTP: verified host keys, rsync-style excludes, all-or-nothing passes.
package confsync

import "errors"

// Sentinel errors; test them with errors.Is.
var (
	// ErrPaused: the pause flag file exists, the pass did not run.
	ErrPaused = errors.New("config sync is paused")
	// ErrHostKeyUnknown: the primary's host key is not in known_hosts (and accepting a new
	// key was not asked for).
	ErrHostKeyUnknown = errors.New("host key unknown")
	// ErrHostKeyMismatch: known_hosts holds a different key for the primary.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrUnsafePath: the primary sent a name that would escape the target directory.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrBadTarget: the target directory is not acceptable (for example "/").
	ErrBadTarget = errors.New("bad target directory")
	// ErrBadPattern: an exclude pattern cannot be compiled.
	ErrBadPattern = errors.New("bad exclude pattern")
	// ErrNoSpace: the pass's downloads do not fit on the target's filesystem above the
	// reserve; nothing was fetched.
	ErrNoSpace = errors.New("not enough free space")
	// ErrConfig: a configuration value is invalid.
	ErrConfig = errors.New("invalid configuration")
)
