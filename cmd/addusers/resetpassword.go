package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
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
	if f.pin != "" && !isPIN(f.pin) {
		return f, cli.Usagef("--pin must be exactly 4 digits") // never echo a PIN
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
	pr := &passwordReset{cfg: a.Config, identity: clients.Identity, mailer: m, recorder: recorder{
		store: st, logger: a.Logger, out: env.Stdout, actor: a.Actor(), source: "addusers reset-password",
	}}
	return pr.run(ctx, f)
}

// passwordReset is one reset-password command at work.
type passwordReset struct {
	recorder
	cfg      *config.Config
	identity *gophercloud.ServiceClient
	mailer   *userMail
}

func (pr *passwordReset) run(ctx context.Context, f rpFlags) error {
	u, err := pr.findUser(ctx, f)
	if err != nil {
		return err
	}
	to := resetAddress(u)
	if to == "" {
		return fmt.Errorf("keystone holds no email address for %s (%s): set its email attribute first; "+
			"nothing was changed", u.Name, u.ID)
	}
	if !u.Enabled {
		pr.say("note: %s is disabled in Keystone; the link sets a password, but the account cannot log in until it is enabled", u.Name)
	}

	issued, err := pr.mailer.setpass.Reset(ctx, u.ID, f.pin, "")
	fellBack := false
	switch {
	case errors.Is(err, setpass.ErrResetNoPIN):
		// 409: no PIN on file, or it is locked after too many wrong PINs
		// (setpass's message says which).
		return fmt.Errorf("%s has no PIN on file, or setpass locked it after too many wrong PINs (%v): "+
			"verify the person, agree a new 4-digit PIN with them and run again with --pin NNNN; nothing was changed", u.Name, err)
	case errors.Is(err, setpass.ErrResetUnsupported):
		if issued, err = pr.fallback(ctx, u, f.pin); err != nil {
			return err
		}
		fellBack = true
	case err != nil:
		return fmt.Errorf("asking setpass for a reset link for %s: %w", u.Name, err)
	}
	details := map[string]string{"name": u.Name, "expires_at": issued.ExpiresAt.UTC().Format(time.RFC3339),
		"pin_replaced": fmt.Sprint(f.pin != ""), "temporary_password": fmt.Sprint(fellBack)}
	pr.audit(ctx, "setpass.reset", u.ID, details)
	if !fellBack {
		pr.say("issued a password-reset link for %s (%s), valid until %s", u.Name, u.ID, issued.ExpiresAt.UTC().Format(time.RFC1123))
		pr.say("%s's current password keeps working until the link is used", u.Name)
	}
	if f.pin != "" {
		pr.say("the PIN on file for %s was replaced by the one given with --pin", u.Name)
	}
	return pr.mail(ctx, u, to, issued)
}

// fallback is MOC's behaviour, for a setpass without a reset credential:
// a random temporary password replaces the user's password now, and the
// link changes it as the user.
func (pr *passwordReset) fallback(ctx context.Context, u cloud.User, pin string) (setpass.Issued, error) {
	temp, err := cloud.TempPassword(rand.Reader)
	if err != nil {
		return setpass.Issued{}, err
	}
	if err := cloud.SetPassword(ctx, pr.identity, u.ID, temp); err != nil {
		return setpass.Issued{}, err
	}
	pr.audit(ctx, "user.password.reset-temporary", u.ID, map[string]string{"name": u.Name})
	pr.say("WARNING: setpass has no reset credential (setpass.reset_user), so this falls back to MOC's behaviour:")
	pr.say("  %s's password was replaced just now by a random temporary one. The old password NO LONGER WORKS;", u.Name)
	pr.say("  %s must use the link to choose a new one.", u.Name)
	issued, err := pr.mailer.setpass.Reset(ctx, u.ID, pin, temp)
	if err != nil {
		return setpass.Issued{}, fmt.Errorf("asking setpass for a reset link for %s after replacing the password "+
			"(the account now has a temporary password no one knows; run the command again): %w", u.Name, err)
	}
	pr.say("issued a password-reset link for %s (%s), valid until %s", u.Name, u.ID, issued.ExpiresAt.UTC().Format(time.RFC1123))
	return issued, nil
}

// mail queues the password-reset mail and, unless told not to, delivers.
func (pr *passwordReset) mail(ctx context.Context, u cloud.User, to string, issued setpass.Issued) error {
	key := fmt.Sprintf("%s:%s:%d", mail.KindPasswordReset, u.ID, issued.ExpiresAt.UnixNano())
	data := mail.PasswordResetData{Name: u.Name, Username: u.Name, Link: issued.URL, ExpiresAt: issued.ExpiresAt}
	if _, queued, err := pr.mailer.outbox.Queue(ctx, key, mail.KindPasswordReset, []netmail.Address{{Address: to}}, data); err != nil {
		return fmt.Errorf("queuing the password-reset mail to %s: %w", to, err)
	} else if queued {
		pr.audit(ctx, "mail.queue", u.ID, map[string]string{"kind": mail.KindPasswordReset, "key": key})
	}
	pr.say("queued the password-reset mail for %s to %s (the address Keystone holds)", u.Name, to)
	return pr.mailer.drain(ctx, &pr.recorder)
}

// findUser takes --user as a user ID first (when it can be one), then as a
// name in --domain, matched ignoring case.
func (pr *passwordReset) findUser(ctx context.Context, f rpFlags) (cloud.User, error) {
	if looksLikeID(f.user) {
		u, err := cloud.GetUser(ctx, pr.identity, f.user)
		if err == nil || !errors.Is(err, cloud.ErrNoUser) {
			return u, err
		}
	}
	domain := f.domain
	if domain == "" {
		domain = pr.cfg.OpenStack.Domain
	}
	d, err := cloud.FindDomain(ctx, pr.identity, domain)
	if err != nil {
		return cloud.User{}, err
	}
	u, err := cloud.FindUser(ctx, pr.identity, d.ID, f.user)
	if errors.Is(err, cloud.ErrNoUser) {
		return cloud.User{}, fmt.Errorf("no user %q in domain %q (nor a user with that ID): %w", f.user, d.Name, err)
	}
	return u, err
}

// looksLikeID: Keystone IDs are 32 hex digits (or, from LDAP, letters,
// digits, '-' and '_'); a name with '@' or '.' is never tried as one.
func looksLikeID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// resetAddress is where the user's reset mail goes: the address Keystone
// holds (the email attribute), else the name when it is an address.
func resetAddress(u cloud.User) string {
	for _, s := range []string{u.Email, u.Name} {
		if a, err := netmail.ParseAddress(s); err == nil && a.Address == s {
			return s
		}
	}
	return ""
}
