package main

import (
	"context"
	"os"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/cli"
)

// Environment of a child process started by TestKilledRunsConverge.
const (
	envKillHelper = "KAIZEN_KILLTEST_HELPER" // "1" in a child; unset in a normal test run
	envKillConfig = "KAIZEN_KILLTEST_CONFIG" // the settings file
	envKillSheet  = "KAIZEN_KILLTEST_SHEET"  // the requests CSV
)

// TestKillHelper is the addusers process of TestKilledRunsConverge: run
// exactly as main runs it, exiting with main's status. It does nothing in a
// normal test run.
func TestKillHelper(t *testing.T) {
	if os.Getenv(envKillHelper) != "1" {
		return
	}
	args := []string{"--config", os.Getenv(envKillConfig), "import", "--sheet", os.Getenv(envKillSheet), "--workers", "4"}
	err := run(context.Background(), args, os.Getenv, os.Stdout, os.Stderr)
	// The testing package turns os.Exit(0) inside a test into a failure, so
	// success is the test returning (the binary then exits 0).
	if code := cli.ExitCode("addusers", err, os.Stderr); code != 0 {
		os.Exit(code)
	}
}
