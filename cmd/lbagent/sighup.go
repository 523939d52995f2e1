package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// logSIGHUP catches SIGHUP (whose default ends the process without a word) for a command
// that cannot reload: each one is logged with msg, which says what to do instead, and the
// command runs on. It stops when ctx ends or stop is called.
func logSIGHUP(ctx context.Context, log zerologLogger, msg string) (stop func()) {
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
