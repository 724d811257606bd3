package e2e

import (
	_ "unsafe" // for go:linkname

	_ "github.com/kaizen-onboard/kaizen/internal/setpass" // unseal's package
)

// setpassUnseal is setpass's own unseal (internal/setpass/secrets.go),
// the function its handler opens tokens.sealed_password with: the attacker
// uses the very code, not a copy that could drift from it. Production code
// keeps no test-only export for it, and an export_test.go in setpass is not
// visible from this package, so it is pulled by name. If it is renamed the
// build of this test fails; if its signature changes, the positive control
// in attack (the captured tokens open their own rows) fails.
//
//go:linkname setpassUnseal github.com/kaizen-onboard/kaizen/internal/setpass.unseal
func setpassUnseal(token, userID string, sealed []byte) (string, error)
