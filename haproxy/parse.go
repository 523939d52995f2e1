package haproxy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Operational states (srv_op_state) of "show servers state".
const (
	OpStopped  = 0
	OpStarting = 1
	OpRunning  = 2
	OpStopping = 3
)

// Administrative state bits (srv_admin_state) of "show servers state".
const (
	AdminForcedMaint     = 0x01
	AdminInheritedMaint  = 0x02
	AdminConfigMaint     = 0x04
	AdminForcedDrain     = 0x08
	AdminInheritedDrain  = 0x10
	AdminResolutionMaint = 0x20
	AdminFQDNMaint       = 0x40

	adminMaintMask = AdminForcedMaint | AdminInheritedMaint | AdminConfigMaint |
		AdminResolutionMaint | AdminFQDNMaint
	adminDrainMask = AdminForcedDrain | AdminInheritedDrain
)

// ServerState is one row of "show servers state". Fields holds every column by its header
// name ("-" for empty, as HAProxy prints it).
type ServerState struct {
	BackendName string
	ServerName  string
	Addr        string
	OpState     int // OpStopped .. OpStopping
	AdminState  int // Admin* bits
	Fields      map[string]string
}

// Maint reports whether any maintenance bit is set.
func (s ServerState) Maint() bool { return s.AdminState&adminMaintMask != 0 }

// Drain reports whether a drain bit is set (and no maintenance bit, which wins).
func (s ServerState) Drain() bool { return !s.Maint() && s.AdminState&adminDrainMask != 0 }

// ParseServersState parses the answer of "show servers state": a version line ("1"), a
// header line "# be_id be_name ..." and space-separated rows. Columns are found by name.
func ParseServersState(answer string) ([]ServerState, error) {
	var header []string
	var out []ServerState
	lines := strings.Split(answer, "\n")
	for i, line := range lines {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if header == nil {
			if rest, ok := strings.CutPrefix(line, "#"); ok {
				header = strings.Fields(rest)
				if len(header) == 0 {
					return nil, fmt.Errorf("servers state line %d: empty header", i+1)
				}
				continue
			}
			if v := strings.TrimSpace(line); v != "1" {
				return nil, fmt.Errorf("servers state line %d: unsupported format version or answer %q",
					i+1, truncate(v))
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) != len(header) {
			return nil, fmt.Errorf("servers state line %d: %d fields, header has %d", i+1, len(f), len(header))
		}
		row := make(map[string]string, len(header))
		for j, name := range header {
			row[name] = f[j]
		}
		s := ServerState{BackendName: row["be_name"], ServerName: row["srv_name"], Addr: row["srv_addr"], Fields: row}
		var err error
		if s.OpState, err = intField(row, "srv_op_state"); err != nil {
			return nil, fmt.Errorf("servers state line %d: %w", i+1, err)
		}
		if s.AdminState, err = intField(row, "srv_admin_state"); err != nil {
			return nil, fmt.Errorf("servers state line %d: %w", i+1, err)
		}
		out = append(out, s)
	}
	if header == nil && strings.TrimSpace(answer) != "" {
		return nil, fmt.Errorf("servers state: no header line")
	}
	return out, nil
}

// StatRow is one row of "show stat". Fields holds every column by its header name.
type StatRow struct {
	Proxy    string // pxname
	Server   string // svname: a server's name, or FRONTEND / BACKEND
	Status   string // UP, DOWN, DRAIN, MAINT, "DOWN (agent)", "UP 1/3", "no check", ...
	Sessions int    // scur
	Weight   int
	Fields   map[string]string
}

// ParseStat parses the CSV answer of "show stat" whose first line is the header
// "# pxname,svname,...". Columns are found by name.
func ParseStat(answer string) ([]StatRow, error) {
	body, ok := strings.CutPrefix(strings.TrimLeft(answer, "\r\n"), "# ")
	if !ok {
		if strings.TrimSpace(answer) == "" {
			return nil, nil
		}
		return nil, fmt.Errorf("stat: no header in %q", truncate(answer))
	}
	r := csv.NewReader(strings.NewReader(body))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("stat header: %w", err)
	}
	col := make(map[string]int, len(header))
	for i, name := range header {
		if name != "" && name != "-" {
			if _, dup := col[name]; !dup {
				col[name] = i
			}
		}
	}
	for _, need := range []string{"pxname", "svname"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("stat header: no %q column", need)
		}
	}
	var out []StatRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("stat: %w", err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		row := make(map[string]string, len(col))
		for name, i := range col {
			if i < len(rec) {
				row[name] = rec[i]
			}
		}
		s := StatRow{Proxy: row["pxname"], Server: row["svname"], Status: row["status"], Fields: row}
		if s.Sessions, err = intField(row, "scur"); err != nil {
			return nil, fmt.Errorf("stat %s/%s: %w", s.Proxy, s.Server, err)
		}
		if s.Weight, err = intField(row, "weight"); err != nil {
			return nil, fmt.Errorf("stat %s/%s: %w", s.Proxy, s.Server, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// intField parses an integer column; a missing, empty or "-" value is 0.
func intField(row map[string]string, name string) (int, error) {
	v := row[name]
	if v == "" || v == "-" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("column %s: %q is not a number", name, truncate(v))
	}
	return n, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
