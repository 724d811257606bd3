package app

import (
	"context"
	"fmt"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/templates"
)

// SetpassService is what `setpass serve` runs on.
type SetpassService struct {
	// Deps lacks what belongs to the server process itself: MailQueued,
	// Go, Registry and Metrics.
	Deps setpass.Deps
	// Outbox delivers the mail the /reset page queues; nil when
	// setpass.reset_mode is off (setpass then sends none).
	Outbox *mail.Outbox
}

// SetpassService wires the set-password service. Unlike the other
// programs it connects to OpenStack at once, and authenticates the reset
// credential (setpass.reset_user) at once, so that wrong credentials stop
// setpass at start rather than at the first user's request.
func (a *App) SetpassService(ctx context.Context) (SetpassService, error) {
	cfg := a.Config
	sp := cfg.Setpass
	// The [secrets] keys sign PINs and seal the mail setpass queues; they
	// must be those of addusers and reminders on the same store.
	keys, err := a.Keys()
	if err != nil {
		return SetpassService{}, err
	}
	proxies, err := setpass.ParseTrustedProxies(sp.TrustedProxies)
	if err != nil {
		return SetpassService{}, fmt.Errorf("%w: setpass.trusted_proxies: %w", config.ErrInvalid, err)
	}
	pages, err := setpass.LoadPages(templates.FS, cfg.Mail.TemplatesDir, setpass.Branding{
		CloudName: cfg.Mail.CloudName, Support: cfg.Mail.Support, LoginURL: cfg.Mail.LoginURL,
	})
	if err != nil {
		return SetpassService{}, err
	}
	st, err := a.Store(ctx)
	if err != nil {
		return SetpassService{}, err
	}
	clients, err := a.Cloud(ctx)
	if err != nil {
		return SetpassService{}, err
	}
	resetter, err := a.resetCredential(ctx)
	if err != nil {
		return SetpassService{}, err
	}
	var svc SetpassService
	if sp.ResetMode != setpass.ResetOff {
		if svc.Outbox, err = a.Outbox(st, true); err != nil {
			return SetpassService{}, err
		}
		svc.Deps.Mail = svc.Outbox // a nil *mail.Outbox must not become a non-nil Mailer
	}
	keystone := setpass.NewKeystone(cloud.NewKeystone(clients.Identity), cfg.OpenStack.AdminProject, cfg.OpenStack.AdminProjectDomain).
		SetAdminCacheTTL(sp.AdminCacheTTL.D).SetClock(a.Now)
	svc.Deps.Store, svc.Deps.Keystone, svc.Deps.Directory, svc.Deps.Resetter = st, keystone, keystone, resetter
	svc.Deps.Pages, svc.Deps.Logger, svc.Deps.Now, svc.Deps.Random = pages, a.Logger, a.Now, a.Random
	svc.Deps.Settings = setpass.Settings{
		Keys:              keys,
		BaseURL:           sp.URL,
		TokenTTL:          sp.TokenTTL.D,
		MaxAttempts:       sp.MaxAttempts,
		MinPasswordLength: sp.MinPasswordLength,
		TrustedProxies:    proxies,
		RateLimit:         sp.RateLimit,
		RateBurst:         sp.RateBurst,
		PINGuard:          setpass.PINGuardSettings{PerUser: sp.PINFailuresPerUser, Window: sp.PINFailureWindow.D},
		Reset: setpass.ResetSettings{
			Mode:           sp.ResetMode,
			TokenTTL:       sp.ResetTokenTTL.D,
			MinTime:        sp.ResetMinTime.D,
			ProtectedRoles: sp.ResetProtectedRoles,
			RevokeTokens:   sp.ResetRevokeTokens,
			AccountLimit:   sp.ResetAccountLimit,
			Helpdesk:       cfg.Mail.Helpdesk,
		},
	}
	return svc, nil
}

// resetCredential authenticates setpass.reset_user, the dedicated service
// user that sets passwords for reset links; nil when none is configured.
func (a *App) resetCredential(ctx context.Context) (setpass.Resetter, error) {
	cfg := a.Config
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
	ao := cloud.PasswordAuth(admin.IdentityEndpoint, sp.ResetUser, sp.ResetUserDomain, sp.ResetPassword.Reveal(), project, projectDomain)
	clients, err := cloud.ConnectAs(ctx, cfg.OpenStack, ao)
	if err != nil {
		return nil, fmt.Errorf("setpass.reset_user: %w", err)
	}
	return setpass.NewResetter(cloud.NewKeystone(clients.Identity)), nil
}
