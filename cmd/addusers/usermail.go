package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// userMail is how the helpdesk commands mail one user a set-password link:
// setpass issues the link, the outbox queues the mail and, unless
// --no-deliver, delivers it at once.
type userMail struct {
	setpass *client.Client
	outbox  *mail.Outbox
	deliver bool
}

// newUserMail takes setpass and the outbox from a, as import does. Callers
// take it before changing anything, so that a mistake in the mail or
// setpass settings stops the command first. a closes the mail transport.
func newUserMail(a *app.App, st store.Store, noDeliver bool) (*userMail, error) {
	sp, err := a.Setpass()
	if err != nil {
		return nil, err
	}
	outbox, err := a.Outbox(st, !noDeliver)
	if err != nil {
		return nil, err
	}
	return &userMail{setpass: sp, outbox: outbox, deliver: !noDeliver}, nil
}

// drain delivers what is queued, when delivering, and says how it went.
func (m *userMail) drain(ctx context.Context, r *recorder) error {
	if !m.deliver {
		return nil
	}
	rep, err := m.outbox.Drain(ctx)
	r.say("mail: %d delivered", rep.Sent)
	for _, fl := range rep.Failures {
		r.say("mail error: %s to %s: %s", fl.Key, strings.Join(fl.To, ", "), fl.Err)
	}
	if err != nil {
		return fmt.Errorf("delivering mail: %w", err)
	}
	return nil
}
