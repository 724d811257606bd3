package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/templates"
)

// mailInterval is how often setpass delivers queued mail when nothing
// wakes it sooner.
const mailInterval = 5 * time.Second

// resetCredential authenticates setpass.reset_user, the dedicated service
// user that sets passwords for reset links; nil when none is configured.
// It authenticates at start-up, so a wrong password or project stops
// setpass at once rather than at the first reset.
func resetCredential(ctx context.Context, cfg *config.Config) (setpass.Resetter, error) {
	sp := cfg.Setpass
	if sp.ResetUser == "" {
		return nil, nil
	}
	admin, _, _ := cfg.OpenStack.Auth()
	project, projectDomain := sp.ResetProject, sp.ResetProjectDomain
	if project == "" {
		project = cfg.OpenStack.AdminProject
	}
	if projectDomain == "" {
		projectDomain = cfg.OpenStack.AdminProjectDomain
	}
	ao := gophercloud.AuthOptions{
		IdentityEndpoint: admin.IdentityEndpoint,
		Username:         sp.ResetUser,
		DomainName:       sp.ResetUserDomain,
		Password:         sp.ResetPassword.Reveal(),
		AllowReauth:      true,
		Scope:            &gophercloud.AuthScope{ProjectName: project, DomainName: projectDomain},
	}
	clients, err := cloud.ConnectAs(ctx, cfg.OpenStack, ao)
	if err != nil {
		return nil, fmt.Errorf("setpass.reset_user: %w", err)
	}
	return setpass.NewResetter(clients.Identity), nil
}

// newOutbox queues setpass's mail in its store and delivers it through
// the [mail] transport (as onboard.NewOutbox does for addusers, without
// pulling the sheet and quota code into setpass).
func newOutbox(cfg *config.Config, st store.Store, logger *slog.Logger) (*mail.Outbox, io.Closer, error) {
	renderer, err := mail.NewRenderer(templates.FS, cfg.Mail.TemplatesDir, mail.CommonFromConfig(cfg.Mail))
	if err != nil {
		return nil, nil, err
	}
	composer, err := mail.NewComposer(cfg.Mail.From, cfg.Mail.Support, time.Now, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	transport, err := mail.NewTransport(cfg.Mail, time.Now, rand.Reader, mail.SMTPOptions{})
	if err != nil {
		return nil, nil, err
	}
	closer, _ := transport.(io.Closer)
	return mail.NewOutbox(st, renderer, composer, transport, mail.OutboxOptions{
		MaxAttempts: cfg.Mail.MaxAttempts, Workers: cfg.Mail.SMTP.PoolSize, Logger: logger,
	}), closer, nil
}
