package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// userMail is how the helpdesk commands mail one user a set-password link:
// setpass issues the link, the outbox queues the mail and, unless
// --no-deliver, delivers it at once.
type userMail struct {
	setpass *setpass.Client
	outbox  *mail.Outbox
	deliver bool
}

// newUserMail wires setpass and the outbox as import does. Callers wire it
// before changing anything, so that a mistake in the mail or setpass
// settings stops the command first. close releases the mail transport.
func newUserMail(cfg *config.Config, provider *gophercloud.ProviderClient, st store.Store, noDeliver bool, logger *slog.Logger) (_ *userMail, close func(), err error) {
	sp, err := onboard.NewSetpassClient(cfg, provider)
	if err != nil {
		return nil, nil, err
	}
	outbox, closer, err := mail.FromConfig(cfg, st, !noDeliver, nil, logger)
	if err != nil {
		return nil, nil, err
	}
	return &userMail{setpass: sp, outbox: outbox, deliver: !noDeliver}, func() {
		if closer != nil {
			closer.Close()
		}
	}, nil
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
