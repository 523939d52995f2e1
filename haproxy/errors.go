package haproxy

import (
	"errors"
	"strings"
)

// Errors the runtime API answers with. A command that fails returns a *CommandError whose
// Unwrap gives one of these when HAProxy's message is a known one, so callers use errors.Is.
var (
	ErrNoSuchBackend        = errors.New("no such backend")
	ErrNoSuchServer         = errors.New("no such server")
	ErrPermissionDenied     = errors.New("permission denied (the socket needs level admin)")
	ErrRequireBackendServer = errors.New("require 'backend/server'")
	ErrUnknownCommand       = errors.New("unknown command")
	// ErrUnreachable wraps every failure to connect to the runtime API socket.
	ErrUnreachable = errors.New("runtime API unreachable")
	// ErrInvalidArgument is returned before anything is sent for a name or value that would
	// break the one-line command (empty, whitespace, ';', '/', control characters).
	ErrInvalidArgument = errors.New("invalid argument")
)

// CommandError is HAProxy's own error message for a command.
type CommandError struct {
	Command string // the command sent
	Message string // HAProxy's answer, trimmed
	known   error
}

func (e *CommandError) Error() string {
	return "haproxy: " + e.Command + ": " + e.Message
}

// Unwrap returns the matching sentinel error, or nil for a message not known to this package.
func (e *CommandError) Unwrap() error { return e.known }

// knownError maps the first line of an answer to a sentinel error, or nil.
func knownError(answer string) error {
	first, _, _ := strings.Cut(strings.TrimLeft(answer, "\r\n"), "\n")
	first = strings.TrimSpace(first)
	switch {
	case first == "No such backend." || first == "Can't find backend.":
		return ErrNoSuchBackend
	case first == "No such server.":
		return ErrNoSuchServer
	case first == "Permission denied":
		return ErrPermissionDenied
	case first == "Require 'backend/server'.":
		return ErrRequireBackendServer
	case strings.HasPrefix(first, "Unknown command"):
		return ErrUnknownCommand
	}
	return nil
}
