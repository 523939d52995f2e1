package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pause pauses WAL replay on a standby (pg_wal_replay_pause) and waits, while ctx allows,
// until the standby confirms it. WAL is still received, so it can catch up after Resume.
// It returns the standby's state after the call.
func Pause(ctx context.Context, conn *pgx.Conn) (*Standby, error) {
	return setReplay(ctx, conn, "pg_wal_replay_pause", "paused")
}

// Resume resumes WAL replay on a standby (pg_wal_replay_resume).
func Resume(ctx context.Context, conn *pgx.Conn) (*Standby, error) {
	return setReplay(ctx, conn, "pg_wal_replay_resume", "not paused")
}

func setReplay(ctx context.Context, conn *pgx.Conn, fn, want string) (*Standby, error) {
	if _, err := StandbyStatus(ctx, conn); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SELECT "+fn+"()"); err != nil {
		return nil, withTarget(conn.Config(), fn, err)
	}
	// A pause is confirmed by the startup process at its next check; a standby with no WAL
	// to replay may stay at "pause requested" a while, which already stops replay.
	deadline := time.Now().Add(2 * time.Second)
	for {
		s, err := StandbyStatus(ctx, conn)
		if err != nil {
			return nil, err
		}
		if s.PauseState == want || s.PauseState == "unknown" || time.Now().After(deadline) {
			return s, nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return s, nil
		}
	}
}

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
		if err := sleep(ctx, interval); err != nil {
			return s, withTarget(conn.Config(), fmt.Sprintf("wait for replay (at %s, received %s)", s.ReplayLSN, s.ReceiveLSN), err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
