package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jonboulle/clockwork"
)

// Pause pauses WAL replay on a standby (pg_wal_replay_pause) and waits, up to 2 s, until
// the standby confirms it ("pause requested" after that already stops replay before its
// next record). WAL is still received, so it can catch up after Resume. It returns the
// standby's state after the call, and an *InterruptedError when ctx ends before the
// confirmation.
func Pause(ctx context.Context, conn *pgx.Conn) (*Standby, error) {
	return defaultReplay.set(ctx, conn, "pg_wal_replay_pause", "paused")
}

// Resume resumes WAL replay on a standby (pg_wal_replay_resume).
func Resume(ctx context.Context, conn *pgx.Conn) (*Standby, error) {
	return defaultReplay.set(ctx, conn, "pg_wal_replay_resume", "not paused")
}

// replay waits for the standby to confirm a pause or resume on its clock.
type replay struct {
	clock   clockwork.Clock
	confirm time.Duration // how long to wait for the startup process to confirm
	poll    time.Duration
}

// realClock is the clock of the package's waits outside tests.
var realClock = clockwork.NewRealClock()

var defaultReplay = replay{clock: realClock, confirm: 2 * time.Second, poll: 20 * time.Millisecond}

func (r replay) set(ctx context.Context, conn *pgx.Conn, fn, want string) (*Standby, error) {
	if _, err := StandbyStatus(ctx, conn); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SELECT "+fn+"()"); err != nil {
		return nil, withTarget(conn.Config(), fn, err)
	}
	// A pause is confirmed by the startup process at its next check; a standby with no WAL
	// to replay may stay at "pause requested" a while, which already stops replay.
	deadline := r.clock.Now().Add(r.confirm)
	for {
		s, err := StandbyStatus(ctx, conn)
		if err != nil {
			return nil, err
		}
		if s.PauseState == want || s.PauseState == "unknown" || r.clock.Now().After(deadline) {
			return s, nil
		}
		if err := sleep(ctx, r.clock, r.poll); err != nil {
			// The call went through, but the standby has not confirmed it: not a success.
			return s, withTarget(conn.Config(), fn, &InterruptedError{Step: fn, State: s.PauseState, Err: err})
		}
	}
}

// InterruptedError is returned when ctx ends (Ctrl-C, SIGTERM, a closed SSH session) before
// the standby confirmed a pause or resume. It matches ctx's error (errors.Is).
type InterruptedError struct {
	Step  string // "pg_wal_replay_pause" or "pg_wal_replay_resume"
	State string // the standby's pause state when interrupted, e.g. "pause requested"
	Err   error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted before the standby confirmed: replay is %q (see lbagent db status)", e.State)
}

// Unwrap makes errors.Is(err, context.Canceled) true.
func (e *InterruptedError) Unwrap() error { return e.Err }

// WaitCaughtUp polls the standby every interval until its replay LSN has reached its receive
// LSN (the guide's check before upgrading a secondary). progress, when not nil, is called
// with every state seen. It returns ErrPaused at once while replay is paused (even with nothing pending: new WAL
// would not be applied), and ctx's error
// (wrapped, with the last state) when ctx ends first.
func WaitCaughtUp(ctx context.Context, conn *pgx.Conn, interval time.Duration, progress func(*Standby)) (*Standby, error) {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	for {
		s, err := StandbyStatus(ctx, conn)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(s)
		}
		if s.Paused {
			// Even when nothing is pending now, new WAL would not be applied.
			return s, withTarget(conn.Config(), "wait for replay", ErrPaused)
		}
		if s.CaughtUp {
			return s, nil
		}
		if err := sleep(ctx, realClock, interval); err != nil {
			return s, withTarget(conn.Config(), fmt.Sprintf("wait for replay (at %s, received %s)", s.ReplayLSN, s.ReceiveLSN), err)
		}
	}
}

// sleep waits d on clock; it returns ctx's error when ctx ends first.
func sleep(ctx context.Context, clock clockwork.Clock, d time.Duration) error {
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
