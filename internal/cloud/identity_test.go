package cloud_test

import (
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/cloud/cloudtest"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestKeystoneConformance runs the identity conformance suite against the
// real Keystone (the fake runs it in cloudtest); under CI=true a missing
// Keystone fails.
func TestKeystoneConformance(t *testing.T) {
	testenv.Keystone(t) // skip, or fail under CI, once rather than per subtest
	cloudtest.Run(t, func(t *testing.T) (cloud.Identity, func()) {
		return cloud.NewKeystone(testenv.Keystone(t).Identity), nil
	})
}
