package store_test

import (
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/store/storetest"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// postgresURL is a fresh database per call; see testenv.Postgres.
func postgresURL(t *testing.T) string { return testenv.Postgres(t) }

func TestPostgresConformance(t *testing.T) {
	t.Parallel()
	testenv.Postgres(t) // skip, or fail under CI, before starting subtests
	storetest.Run(t, storetest.Opener(postgresURL))
}

func TestPostgresProcesses(t *testing.T) {
	t.Parallel()
	testenv.Postgres(t)
	storetest.RunProcesses(t, postgresURL)
}
