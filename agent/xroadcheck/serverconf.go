package xroadcheck

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/xroad-lb/lbkit/agent/check"
	"github.com/xroad-lb/lbkit/agent/xroad"
)

// ServerConf checks the serverconf database with a real query over one kept connection, so
// its query rate depends on the check schedule only, never on the probe rate.
type ServerConf struct {
	reload   func() (xroad.DBSettings, error)
	mu       sync.Mutex // the runner never overlaps runs; this guards Close against Run
	settings xroad.DBSettings
	conn     *pgx.Conn
}

// NewServerConf returns the check for the database in settings (from db.properties). Before
// each new connection it calls reload (when not nil) to pick up a changed db.properties; if
// that fails, it keeps using the last good settings.
func NewServerConf(settings xroad.DBSettings, reload func() (xroad.DBSettings, error)) *ServerConf {
	return &ServerConf{settings: settings, reload: reload}
}

// Run is the check.Func.
func (s *ServerConf) Run(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || s.conn.IsClosed() {
		if s.reload != nil {
			if fresh, err := s.reload(); err == nil {
				s.settings = fresh
			}
		}
		cfg, err := pgx.ParseConfig(s.settings.ConnString())
		if err != nil {
			return check.Fail(MsgServerConfDown, fmt.Errorf("%s: %w", s.settings, err))
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return check.Fail(MsgServerConfDown, fmt.Errorf("connect %s: %w", s.settings, err))
		}
		s.conn = conn
	}
	var one int
	if err := s.conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		s.closeLocked()
		return check.Fail(MsgServerConfDown, fmt.Errorf("query %s: %w", s.settings, err))
	}
	if one != 1 {
		return check.Fail(MsgServerConfBad, fmt.Errorf("SELECT 1 returned %d", one))
	}
	return nil
}

// Close closes the kept connection.
func (s *ServerConf) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *ServerConf) closeLocked() {
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		_ = s.conn.Close(ctx)
		cancel()
		s.conn = nil
	}
}

// Use switches to settings (a configuration reload): when they differ from the current ones
// the kept connection is closed, and the next run connects with them.
func (s *ServerConf) Use(settings xroad.DBSettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if settings.ConnString() == s.settings.ConnString() {
		return
	}
	s.settings = settings
	s.closeLocked()
}
