package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
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
