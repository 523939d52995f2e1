package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type zerologLogger = zerolog.Logger

type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&l.format, "log-format", "json", "log format: json (one object per line) or console (human-readable; coloured only on a terminal)")
}

func (l *logFlags) logger() (zerolog.Logger, error) { return l.loggerTo(os.Stderr) }

// loggerTo logs to w (e.g. stderr through the secrets' redactor). The console format is
// coloured only when stderr is a terminal: a log file, a pipe or journald gets plain text.
func (l *logFlags) loggerTo(w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(l.level)
	if err != nil || l.level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	var log zerolog.Logger
	switch l.format {
	case "json":
		log = zerolog.New(w)
	case "console":
		log = zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(os.Stderr)})
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want json or console", l.format)
	}
	return log.Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal reports whether f is a terminal (it answers the terminal attributes ioctl).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
