// Command addusers onboards approved sign-up requests into an OpenStack
// cloud. It is the admins' and helpdesk's batch command.
//
// Usage:
//
//	addusers [--config PATH] [command] [flags]
//
// The commands are:
//
//	import          apply every approved request not yet done: create or
//	                reuse domains, projects, users and role assignments, set
//	                quotas, register each new user with setpass, mail the
//	                links, and write each outcome back to the sheet (the
//	                default command)
//	plan            show what import would change; changes nothing anywhere
//	quotas          apply approved quota-change requests; --revert-expired
//	                ends temporary quotas
//	validate        report drift from what import and quotas did; --apply
//	                repairs roles and quotas
//	domain-manager  assign, revoke or list SCS domain managers
//	reset-password  mail a user a password-reset link through setpass
//	config check    validate the settings and print them, secrets redacted
//	version         print the version
//
// "addusers COMMAND --help" lists a command's flags. Exit status: 0
// success, 1 some work failed, 2 usage or configuration error.
//
// The settings file is shared with setpass and reminders; see
// settings.example.toml, docs/addusers.md and docs/operations.md.
package main
