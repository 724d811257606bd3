package mail

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/templates"
)

// FromConfig builds the outbox the [mail] settings describe over st: the
// embedded templates (or mail.templates_dir), the composer and, when
// deliver is set, the configured transport. now is the clock of the
// composer, transport and outbox (nil: time.Now). The closer, when not nil,
// closes the transport. Every program that mails builds its outbox here,
// and it seals and opens bodies with the [secrets] keys: without them it
// fails, naming the settings to set.
func FromConfig(cfg *config.Config, st OutboxStore, deliver bool, now func() time.Time, logger *slog.Logger) (*Outbox, io.Closer, error) {
	if now == nil {
		now = time.Now
	}
	keys, err := KeysFromConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	renderer, err := NewRenderer(templates.FS, cfg.Mail.TemplatesDir, CommonFromConfig(cfg.Mail))
	if err != nil {
		return nil, nil, err
	}
	composer, err := NewComposer(cfg.Mail.From, cfg.Mail.Support, now, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	var transport Transport
	var closer io.Closer
	if deliver {
		if transport, err = NewTransport(cfg.Mail, now, rand.Reader, SMTPOptions{}); err != nil {
			return nil, nil, err
		}
		closer, _ = transport.(io.Closer)
	}
	return NewOutbox(st, renderer, composer, transport, OutboxOptions{
		MaxAttempts: cfg.Mail.MaxAttempts, Workers: cfg.Mail.SMTP.PoolSize, Keys: keys, Now: now, Logger: logger,
	}), closer, nil
}

// KeysFromConfig is the keyring of the [secrets] keys (or the legacy
// setpass.secret_key); an error wrapping config.ErrInvalid when none is set.
func KeysFromConfig(cfg *config.Config) (*keyring.Keyring, error) {
	if !cfg.Secrets.IsSet() {
		return nil, fmt.Errorf("%w: secret keys are required to queue, deliver or check mail and PINs: %s",
			config.ErrInvalid, config.MissingSecretsHelp)
	}
	keys, err := keyring.New(rand.Reader, cfg.Secrets.Reveal()...)
	if err != nil {
		return nil, fmt.Errorf("%w: secrets.keys: %w", config.ErrInvalid, err)
	}
	return keys, nil
}
