package cloudtest_test

import (
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/cloud/cloudtest"
)

// TestFakeConformance: the fake passes the suite the real Keystone passes
// (TestKeystoneConformance in internal/cloud).
func TestFakeConformance(t *testing.T) {
	cloudtest.Run(t, func(t *testing.T) (cloud.Identity, func()) { return cloudtest.New(), nil })
}
