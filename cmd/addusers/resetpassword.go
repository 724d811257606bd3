package main

import (
	"context"

	"io"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/pin"
)

const resetPasswordUsage = `Usage: addusers [--config PATH] reset-password --user EMAIL|ID [--pin NNNN]
                                [--domain D] [--no-deliver]

The helpdesk's password reset (MOC's reset-password.py): asks setpass for a
password-reset link and mails it to the address Keystone holds for the user
(its email attribute, else its name when that is an address) - never to an
address typed here.

With setpass's reset credential (setpass.reset_user) the user's current
password keeps working until they use the link. Without one, this falls back
to MOC's behaviour: the password is replaced by a random temporary one at
once, so the old one stops working, and the output says so.

The link asks for the user's PIN on file (kept by setpass since their first
password was set). --pin replaces it: use it only once you have verified
the person, and agree the new PIN with them. It is also how a PIN that
setpass locked after too many wrong PINs (setpass.pin_failures_per_user;
the helpdesk is mailed when it happens) is unlocked: without --pin such a
user's reset is refused.

Flags:
  --user EMAIL|ID   the user: a Keystone user ID, or a name (matched ignoring
                    case) in --domain
  --domain NAME     the domain of a user given by name (default:
                    openstack.domain)
  --pin NNNN        a new 4-digit PIN for the link; replaces the PIN on file
  --no-deliver      queue the mail without delivering it now (the reminders
                    daemon's outbox job delivers it)

Exit status: 0 link mailed (or queued), 1 failed, 2 usage or configuration
error.
`

type rpFlags struct {
	user, pin, domain string
	noDeliver         bool
}

func parseResetPasswordFlags(args []string, stdout io.Writer) (rpFlags, error) {
	var f rpFlags
	fs := newFlagSet("reset-password", resetPasswordUsage, stdout)
	fs.StringVar(&f.user, "user", "", "")
	fs.StringVar(&f.pin, "pin", "", "")
	fs.StringVar(&f.domain, "domain", "", "")
	fs.BoolVar(&f.noDeliver, "no-deliver", false, "")
	if err := parseFlags(fs, args, "reset-password: "); err != nil {
		return f, err
	}
	f.user, f.domain = strings.TrimSpace(f.user), strings.TrimSpace(f.domain)
	if f.user == "" {
		return f, cli.Usagef("reset-password: --user is required (an email address, a user name or a user ID)")
	}
	if f.pin != "" && !pin.Valid(f.pin) {
		return f, cli.Usagef("--pin must be %s", pin.Rule) // never echo a PIN
	}
	return f, nil
}

func runResetPassword(ctx context.Context, a *app.App, f rpFlags, env cli.Env) error {
	clients, err := a.Cloud(ctx)
	if err != nil {
		return err
	}
	st, err := a.Store(ctx)
	if err != nil {
		return err
	}
	// Wired before anything is asked of setpass, so that a mistake in the
	// mail or setpass settings stops the command before it changes anything.
	m, err := newUserMail(a, st, f.noDeliver)
	if err != nil {
		return err
	}
	rs := account.NewResetter(cloud.Ops{Identity: cloud.NewKeystone(clients.Identity)}, m.setpass, m.outbox,
		auditRecorder(a, st, "addusers reset-password"), a.Random, a.Config.OpenStack.Domain)
	r := &recorder{out: env.Stdout}
	res, err := rs.Reset(ctx, account.ResetRequest{User: f.user, Domain: f.domain, PIN: f.pin})
	printReset(r, res)
	if err != nil {
		return err
	}
	return m.drain(ctx, r)
}

// printReset tells the operator what the reset did, also when it failed
// half-way.
func printReset(r *recorder, res account.ResetResult) {
	u := res.User
	if !res.Found || res.To == "" {
		return
	}
	if !u.Enabled {
		r.say("note: %s is disabled in Keystone; the link sets a password, but the account cannot log in until it is enabled", u.Name)
	}
	if res.TemporaryPassword {
		r.say("WARNING: setpass has no reset credential (setpass.reset_user), so this falls back to MOC's behaviour:")
		r.say("  %s's password was replaced just now by a random temporary one. The old password NO LONGER WORKS;", u.Name)
		r.say("  %s must use the link to choose a new one.", u.Name)
	}
	if res.Issued.URL == "" {
		return
	}
	r.say("issued a password-reset link for %s (%s), valid until %s", u.Name, u.ID, res.Issued.ExpiresAt.UTC().Format(time.RFC1123))
	if !res.TemporaryPassword {
		r.say("%s's current password keeps working until the link is used", u.Name)
	}
	if res.PINReplaced {
		r.say("the PIN on file for %s was replaced by the one given with --pin", u.Name)
	}
	if res.MailKey != "" {
		r.say("queued the password-reset mail for %s to %s (the address Keystone holds)", u.Name, res.To)
	}
}
