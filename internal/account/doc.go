// Package account holds what kaizen does to an account it created, shared
// by addusers import, domain-manager, reset-password and the link
// reminders: issuing a set-password link ([Issuer]), the helpdesk's
// password reset ([Resetter]), the audit record of each change
// ([Recorder]) and the idempotency keys of the mail they queue.
package account
