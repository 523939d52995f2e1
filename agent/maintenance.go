package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/xroad-lb/lbkit/internal/atomicfile"
)

// maintenanceChanged logs a switch, and the error of persisting it.
func (a *Agent) maintenanceChanged(old, on bool, err error) {
	a.log.Info().Bool("maintenance", on).Bool("was", old).Msg("maintenance mode set")
	if err != nil {
		a.log.Error().Err(err).Msg("cannot persist maintenance mode")
	}
}

// writeMaintenance writes the state file with on (the store calls it under its switch lock).
func writeMaintenance(path string, on bool) error {
	if err := writeFileAtomic(path, []byte(fmt.Sprintf("%t\n", on))); err != nil {
		return fmt.Errorf("maintenance state file: %w", err)
	}
	return nil
}

// restoreMaintenance reads the state file, when one is configured and present.
func (a *Agent) restoreMaintenance() error {
	path := a.cfg.MaintenanceStateFile
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("maintenance state file: %w", err)
	}
	switch strings.TrimSpace(string(b)) {
	case "true":
		a.store.SetMaintenance(true)
	case "false", "":
	default:
		return fmt.Errorf("%s: %q: want true or false", path, strings.TrimSpace(string(b)))
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}
