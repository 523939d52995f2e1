package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Replica is one connected standby as the primary sees it (pg_stat_replication).
type Replica struct {
	Name       string  `json:"name"` // application_name (lbagent sets it to the node name)
	User       string  `json:"user"`
	Address    string  `json:"address"`
	State      string  `json:"state"` // startup, catchup, streaming, backup, stopping
	SentLSN    LSN     `json:"sent_lsn"`
	WriteLSN   LSN     `json:"write_lsn"`
	FlushLSN   LSN     `json:"flush_lsn"`
	ReplayLSN  LSN     `json:"replay_lsn"`
	LagBytes   int64   `json:"lag_bytes"`   // current WAL position minus the standby's replay position
	LagSeconds float64 `json:"lag_seconds"` // replay_lag
	SyncState  string  `json:"sync_state"`
	TLS        bool    `json:"tls"`       // the standby connected over TLS
	ClientDN   string  `json:"client_dn"` // its certificate's subject
}

// Standby is the replication state of a standby (secondary) instance.
type Standby struct {
	Streaming     bool   `json:"streaming"`      // a WAL receiver is connected and streaming
	ReceiverState string `json:"receiver_state"` // pg_stat_wal_receiver.status; "" when no receiver runs
	SenderHost    string `json:"sender_host,omitempty"`
	SenderPort    int    `json:"sender_port,omitempty"`
	ReceiveLSN    LSN    `json:"receive_lsn"`
	ReplayLSN     LSN    `json:"replay_lsn"`
	Paused        bool   `json:"paused"`
	// PauseState is pg_get_wal_replay_pause_state(): "not paused", "pause requested",
	// "paused", or "unknown" when the user may not call it.
	PauseState string    `json:"pause_state"`
	LastReplay time.Time `json:"last_replay,omitzero"` // commit time of the last replayed transaction
	LagBytes   int64     `json:"lag_bytes"`            // received but not yet replayed
	LagSeconds float64   `json:"lag_seconds"`          // age of the last replayed transaction while behind; 0 when caught up
	CaughtUp   bool      `json:"caught_up"`            // replay LSN has reached the receive LSN
}

// Report is the answer of Status: a primary lists its standbys, a standby describes itself.
type Report struct {
	Target     string    `json:"target"`
	Role       string    `json:"role"` // "primary" or "standby"
	CurrentLSN LSN       `json:"current_lsn,omitempty"`
	Replicas   []Replica `json:"replicas,omitempty"`
	Standby    *Standby  `json:"standby,omitempty"`
}

// Status reports replication on the instance behind conn, whichever role it has.
func Status(ctx context.Context, conn *pgx.Conn) (*Report, error) {
	cfg := conn.Config()
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return nil, withTarget(cfg, "query recovery state", err)
	}
	r := &Report{Target: describe(cfg), Role: "primary"}
	if inRecovery {
		s, err := StandbyStatus(ctx, conn)
		if err != nil {
			return nil, err
		}
		r.Role, r.Standby = "standby", s
		return r, nil
	}
	cur, reps, err := PrimaryStatus(ctx, conn)
	if err != nil {
		return nil, err
	}
	r.CurrentLSN, r.Replicas = cur, reps
	return r, nil
}

// PrimaryStatus lists the standbys connected to a primary and its current WAL position.
func PrimaryStatus(ctx context.Context, conn *pgx.Conn) (LSN, []Replica, error) {
	cfg := conn.Config()
	var curText string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&curText); err != nil {
		return 0, nil, withTarget(cfg, "query current WAL position", err)
	}
	cur, err := ParseLSN(curText)
	if err != nil {
		return 0, nil, withTarget(cfg, "query current WAL position", err)
	}
	rows, err := conn.Query(ctx, `SELECT coalesce(application_name, ''), coalesce(usename::text, ''),
		coalesce(host(client_addr), ''), coalesce(state, ''), sent_lsn::text, write_lsn::text,
		flush_lsn::text, replay_lsn::text, coalesce(extract(epoch FROM replay_lag), 0)::float8,
		coalesce(sync_state, ''), coalesce(l.ssl, false), coalesce(l.client_dn, '')
		FROM pg_stat_replication r LEFT JOIN pg_stat_ssl l USING (pid) ORDER BY application_name, pid`)
	if err != nil {
		return 0, nil, withTarget(cfg, "query pg_stat_replication", err)
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		var sent, write, flush, replay *string
		if err := rows.Scan(&r.Name, &r.User, &r.Address, &r.State, &sent, &write, &flush, &replay,
			&r.LagSeconds, &r.SyncState, &r.TLS, &r.ClientDN); err != nil {
			return 0, nil, withTarget(cfg, "read pg_stat_replication", err)
		}
		for _, p := range []struct {
			s *string
			l *LSN
		}{{sent, &r.SentLSN}, {write, &r.WriteLSN}, {flush, &r.FlushLSN}, {replay, &r.ReplayLSN}} {
			if *p.l, err = parseNullLSN(p.s); err != nil {
				return 0, nil, withTarget(cfg, "read pg_stat_replication", err)
			}
		}
		r.LagBytes = cur.Sub(r.ReplayLSN)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, withTarget(cfg, "read pg_stat_replication", err)
	}
	return cur, out, nil
}

// StandbyStatus describes a standby: WAL receiver, receive and replay positions, pause state
// and lag. It returns ErrNotStandby on an instance that is not in recovery.
func StandbyStatus(ctx context.Context, conn *pgx.Conn) (*Standby, error) {
	cfg := conn.Config()
	var inRecovery bool
	var recv, replay *string
	var last *time.Time
	var now time.Time
	err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text,
		pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(), now()`).
		Scan(&inRecovery, &recv, &replay, &last, &now)
	if err != nil {
		return nil, withTarget(cfg, "query standby state", err)
	}
	if !inRecovery {
		return nil, withTarget(cfg, "standby state", ErrNotStandby)
	}
	s := &Standby{PauseState: "unknown"}
	if s.ReceiveLSN, err = parseNullLSN(recv); err != nil {
		return nil, withTarget(cfg, "query standby state", err)
	}
	if s.ReplayLSN, err = parseNullLSN(replay); err != nil {
		return nil, withTarget(cfg, "query standby state", err)
	}
	if last != nil {
		s.LastReplay = *last
	}
	if err := receiverState(ctx, conn, s); err != nil {
		return nil, err
	}
	var state string
	if err := conn.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&state); err == nil {
		s.PauseState = state
		s.Paused = state != "not paused"
	} else if !isPermissionDenied(err) {
		return nil, withTarget(cfg, "query replay pause state", err)
	}
	s.LagBytes = s.ReceiveLSN.Sub(s.ReplayLSN)
	s.CaughtUp = s.LagBytes == 0
	if !s.CaughtUp && !s.LastReplay.IsZero() {
		s.LagSeconds = now.Sub(s.LastReplay).Seconds()
	}
	return s, nil
}

// receiverState fills the WAL receiver fields. Without pg_read_all_stats (pg_monitor) the
// view shows only the pid; a running receiver then counts as streaming.
func receiverState(ctx context.Context, conn *pgx.Conn, s *Standby) error {
	var status, host *string
	var port *int32
	err := conn.QueryRow(ctx, "SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver LIMIT 1").
		Scan(&status, &host, &port)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return withTarget(conn.Config(), "query pg_stat_wal_receiver", err)
	}
	if status == nil {
		s.ReceiverState, s.Streaming = "running (details need pg_monitor)", true
		return nil
	}
	s.ReceiverState, s.Streaming = *status, *status == "streaming"
	if host != nil {
		s.SenderHost = *host
	}
	if port != nil {
		s.SenderPort = int(*port)
	}
	return nil
}

func isPermissionDenied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501"
}

// String is a one-line summary used by progress output and check messages.
func (s *Standby) String() string {
	return fmt.Sprintf("receiver %s, received %s, replayed %s, lag %d bytes %.1fs, %s",
		orNone(s.ReceiverState), s.ReceiveLSN, s.ReplayLSN, s.LagBytes, s.LagSeconds, s.PauseState)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
