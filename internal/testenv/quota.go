package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// quotaServicesEnv lists the quota APIs `scripts/dev-keystone env` found
// running, among compute, block-storage and network.
const quotaServicesEnv = "KAIZEN_TEST_QUOTA_SERVICES"

// RequireQuotaService skips the test when the local quota API of service
// (compute, block-storage or network) is not running, or fails it under
// CI=true.
func RequireQuotaService(t testing.TB, service string) {
	t.Helper()
	if slices.Contains(strings.Split(os.Getenv(quotaServicesEnv), ","), service) {
		return
	}
	msg := "the local " + service + " quota API is not running (" + quotaServicesEnv + "=" +
		os.Getenv(quotaServicesEnv) + "); start it: " + keystoneStartHint
	if os.Getenv("CI") == "true" {
		t.Fatalf("testenv: %s; CI=true, so this fails instead of skipping", msg)
	}
	t.Skipf("testenv: %s", msg)
}
