package setpass

import (
	"context"
	"log/slog"
	netmail "net/mail"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/mail"
)

// Mailer queues mail for delivery (a *mail.Outbox over setpass's store).
// setpass never sends while a request waits: a [MailSender] delivers.
type Mailer interface {
	Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (id int64, created bool, err error)
}

// Drainer delivers what is queued (*mail.Outbox).
type Drainer interface {
	Drain(ctx context.Context) (mail.Report, error)
}

// MailSender delivers setpass's queued mail in the background: on every
// tick, and at once when woken (Deps.MailQueued). Delivery is the
// outbox's: leased, retried with backoff, never lost to a crash.
type MailSender struct {
	Outbox   Drainer
	Interval time.Duration
	Wake     <-chan struct{}
	Logger   *slog.Logger
	// Tick, if set, replaces the ticker (tests).
	Tick <-chan time.Time
}

// Run drains once at once, then on every tick or wake until ctx ends.
func (m MailSender) Run(ctx context.Context) {
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	tick := m.Tick
	if tick == nil {
		t := time.NewTicker(m.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		m.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-m.Wake:
		}
	}
}

// Once delivers what is due now.
func (m MailSender) Once(ctx context.Context) {
	rep, err := m.Outbox.Drain(ctx)
	if err != nil && ctx.Err() == nil {
		m.Logger.Error("delivering mail", "err", err)
	}
	if rep.Sent > 0 {
		m.Logger.Info("mail delivered", "count", rep.Sent)
	}
	for _, f := range rep.Failures {
		m.Logger.Warn("mail not delivered", "key", f.Key, "abandoned", f.Abandoned, "err", f.Err)
	}
}
