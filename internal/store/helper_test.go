package store_test

import (
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/store/storetest"
)

// TestHelperProcess is a child process of storetest.RunProcesses; in a
// normal run it returns at once.
func TestHelperProcess(t *testing.T) { storetest.HelperProcess(t) }
