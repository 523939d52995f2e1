package xroad

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxFileSize bounds every X-Road file lbagent reads (global configuration parts are the
// largest, a few MB).
const MaxFileSize = 64 << 20

// ReadFile reads a regular file of at most MaxFileSize. Anything else (a FIFO, a device, a
// directory) is refused before it is opened, and the open itself does not wait for a writer,
// so a check can never block on such a file.
func ReadFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() { // replaced between the two looks
		return nil, notRegular(path, fi)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, MaxFileSize>>20)
	}
	return b, nil
}

func notRegular(path string, fi os.FileInfo) error {
	return fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
}
