package testenv

import (
	"bytes"
	"sync"
)

// Output collects what a program (or a command run in-process) writes; unlike a
// bytes.Buffer it is safe to read while the program writes.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
