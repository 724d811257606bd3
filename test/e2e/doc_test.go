// Package e2e holds end-to-end tests that meet Kaizen the way an outsider
// does: the three programs wired from one settings file against the real
// Keystone and quota services, the real setpass handler, an in-process
// SMTP server and the Sheets fake, and then an attacker who holds a copy
// of the database and nothing else.
//
// TestCopyOfTheStoreYieldsNoCredential is issue 12 §1's "done when";
// TestKilledRunsConverge kills addusers processes at random points and
// checks that the runs after them converge.
package e2e
