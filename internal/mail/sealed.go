package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// BodyLabel names the outbox's purpose in the key derivation: a body sealed
// under it opens as nothing else, and nothing else opens as a body.
const BodyLabel = "kaizen v1 outbox body"

// errNoKeys: an outbox built without keys neither queues nor delivers, so
// no body is ever stored in plaintext.
var errNoKeys = errors.New("mail: no secret keys to seal and open mail bodies with: " + config.MissingSecretsHelp)

// ErrBodyUnopened marks a queued body that none of the configured keys
// opens: the keys are wrong, or the one it was sealed under was dropped.
// The message stays queued.
var ErrBodyUnopened = errors.New("the body does not open with the configured secret keys " +
	"(secrets.keys differ from the program that queued it, or its key was dropped); the message stays queued")

// bodyAD binds a sealed body to its message: the idempotency key, kind,
// sender and recipients. A body copied to another row, or a row whose
// recipients were changed in the database, no longer opens, so a copy of
// the store with write access cannot redirect a link to another mailbox.
func bodyAD(m store.Message) []byte {
	return keyring.Bind(append([]string{m.Key, m.Kind, m.From}, m.To...)...)
}

func (o *Outbox) seal(m store.Message, body []byte) ([]byte, error) {
	sealed, err := o.box.Seal(body, bodyAD(m))
	if err != nil {
		return nil, fmt.Errorf("sealing the body: %w", err)
	}
	return sealed, nil
}

// open returns the body to deliver. A body queued before bodies were sealed
// (it starts with a header, never with the sealed format's version byte) is
// delivered as stored; the store deletes it once delivered.
func (o *Outbox) open(m store.Message, log *slog.Logger) ([]byte, error) {
	if !keyring.IsSealed(m.Body) {
		log.Warn("delivering a body stored unsealed (queued before bodies were sealed at rest)")
		return m.Body, nil
	}
	body, err := o.box.Open(m.Body, bodyAD(m))
	if err != nil {
		return nil, ErrBodyUnopened
	}
	return body, nil
}

// unopened records a body no key opens as a failed attempt to retry after
// the backoff, never as abandoned: the right keys deliver it later.
func (o *Outbox) unopened(ctx context.Context, claim string, m store.Message, openErr error, log *slog.Logger, record func(func(*Report))) error {
	now := o.opts.Now()
	next := now.Add(o.opts.Backoff.Delay(max(m.Attempts, 1)))
	if err := o.store.MarkFailed(ctx, m.ID, claim, now, openErr.Error(), next, false); err != nil {
		if errors.Is(err, store.ErrConflict) {
			log.Warn("lease lost before the failure was recorded; another sender has the message")
			return nil
		}
		return fmt.Errorf("recording failed delivery of message %d: %w", m.ID, err)
	}
	log.Error("mail not delivered: its body does not open with the configured secret keys; left queued", "next_attempt", next)
	f := Failure{ID: m.ID, Key: m.Key, To: m.To, Err: openErr.Error()}
	record(func(r *Report) { r.Retrying++; r.Failures = append(r.Failures, f) })
	return nil
}
