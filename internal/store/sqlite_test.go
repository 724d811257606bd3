package store_test

import (
	"path/filepath"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/store/storetest"
)

func sqliteURL(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "state", "kaizen.db")
}

func TestSQLiteConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Opener(sqliteURL))
}

func TestSQLiteProcesses(t *testing.T) {
	t.Parallel()
	storetest.RunProcesses(t, sqliteURL)
}
