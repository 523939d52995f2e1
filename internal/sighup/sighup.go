// Package sighup is the one way a long-running command that cannot reload handles SIGHUP,
// whose default ends the process without a word: it logs each one and runs on.
package sighup

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

// Ignore catches SIGHUP: each one is logged as a warning with msg, which says what to do
// instead (e.g. "restart lbagent-sync to apply changed settings"), and the command runs on.
// It stops when ctx ends or stop is called; after stop, SIGHUP has its default again.
func Ignore(ctx context.Context, log zerolog.Logger, msg string) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Warn().Str("signal", "SIGHUP").Msg(msg)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		signal.Stop(hup)
	}
}
