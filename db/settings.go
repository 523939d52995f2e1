package db

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// wantSetting is a server setting that setup makes hold. same reports whether the current
// value already satisfies value; nil means equal text.
type wantSetting struct {
	name, value string
	same        func(cur, want string) bool
}

// ensureSettings runs ALTER SYSTEM for every setting whose configured value (the last one
// in the configuration files, which is what applies after a reload or restart; else the
// running value) does not satisfy the wanted one. Settings of context "postmaster" need a
// restart; they are listed in res.RestartNeeded, together with any still-pending change.
func ensureSettings(ctx context.Context, conn *pgx.Conn, want []wantSetting, res *Result) error {
	cfg := conn.Config()
	for _, w := range want {
		var cur, context string
		err := conn.QueryRow(ctx, `SELECT coalesce((SELECT f.setting FROM pg_file_settings f
			WHERE f.name = $1 AND f.error IS NULL ORDER BY f.seqno DESC LIMIT 1), current_setting($1)),
			(SELECT s.context FROM pg_settings s WHERE s.name = $1)`, w.name).Scan(&cur, &context)
		if err != nil {
			return withTarget(cfg, "read setting "+w.name, err)
		}
		same := w.same
		if same == nil {
			same = func(a, b string) bool { return a == b }
		}
		if same(cur, w.value) {
			res.kept("%s = %s", w.name, cur)
			continue
		}
		if _, err := conn.Exec(ctx, "ALTER SYSTEM SET "+w.name+" = "+quoteLiteral(w.value)); err != nil {
			return withTarget(cfg, "ALTER SYSTEM SET "+w.name, err)
		}
		res.changed("%s: %s => %s", w.name, cur, w.value)
		if context == "postmaster" {
			res.RestartNeeded = append(res.RestartNeeded, w.name)
		}
	}
	rows, err := conn.Query(ctx, "SELECT name FROM pg_settings WHERE pending_restart ORDER BY name")
	if err != nil {
		return withTarget(cfg, "read pending settings", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return withTarget(cfg, "read pending settings", err)
	}
	for _, n := range names {
		found := false
		for _, r := range res.RestartNeeded {
			found = found || r == n
		}
		if !found {
			res.RestartNeeded = append(res.RestartNeeded, n)
		}
	}
	return nil
}

func sameBool(cur, want string) bool { return parseBool(cur) == parseBool(want) }

func parseBool(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "yes", "1", "t", "y":
		return "on"
	case "off", "false", "no", "0", "f", "n":
		return "off"
	}
	return s
}

// atLeast compares numbers parsed by parse: the current value satisfies a wanted minimum.
func atLeast(parse func(string) (int64, error)) func(cur, want string) bool {
	return func(cur, want string) bool {
		c, err1 := parse(cur)
		w, err2 := parse(want)
		return err1 == nil && err2 == nil && c >= w
	}
}

func parseInt(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) }

// parseMB reads a PostgreSQL memory setting whose default unit is MB ("8", "128MB", "1GB").
func parseMB(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s[:i]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q", s)
	}
	switch strings.TrimSpace(s[i:]) {
	case "", "MB":
		return n, nil
	case "kB":
		return n / 1024, nil
	case "GB":
		return n * 1024, nil
	case "TB":
		return n * 1024 * 1024, nil
	}
	return 0, fmt.Errorf("bad size %q", s)
}
