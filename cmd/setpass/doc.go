// Command setpass is the web service behind the set-password link mailed
// to new users: the user enters the PIN they chose on the sign-up form and
// a new password, and setpass sets it in Keystone as the user.
//
// Usage:
//
//	setpass [--config PATH] [serve]
//	setpass [--config PATH] config check
//
// serve (the default command) serves the set-password and self-service
// reset pages, MOC's admin API (PUT /token/<user_id>, PUT
// /reset/<user_id>), /healthz and /metrics until SIGTERM or Ctrl-C, which
// shut it down gracefully. With setpass.admin_listen set, the admin API and
// /metrics are served only on that second listener.
//
// Exit status: 0 success, 1 failure, 2 usage or configuration error. See
// docs/setpass.md and docs/operations.md.
package main
