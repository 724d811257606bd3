// Package testenv gives integration tests the real servers Kaizen talks to,
// or faithful in-process stand-ins where the real one cannot run here:
//
//   - Keystone: the real OpenStack Identity service started by `make test`
//     (scripts/dev-keystone); each test works in its own uniquely named domain.
//     The same script runs the real quota APIs of Nova, Cinder and Neutron,
//     found through Keystone's catalog; $KAIZEN_TEST_QUOTA_SERVICES lists
//     the running ones.
//   - PostgreSQL: a throwaway cluster started by `make test`
//     (scripts/dev-postgres); each test gets a fresh database.
//   - Chromium: Debian's headless browser (scripts/dev-browser), driven by
//     chromedp, one per test, at a phone's viewport ([Browser]).
//   - SMTP: an in-process server (emersion/go-smtp) with STARTTLS and AUTH.
//   - Google Sheets: an in-process fake of the v4 REST endpoints and of the
//     OAuth2 token endpoint, in the sub-package sheetsfake, so the real
//     sheets/v4 client and the real service-account flow run end to end.
//
// Under CI=true a missing server is a test failure, never a skip.
package testenv
