package config

import (
	"strings"
	"testing"
	"time"
)

func TestResetSettings(t *testing.T) {
	osEnv(t)
	t.Run("defaults", func(t *testing.T) {
		cfg, err := parse(t, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		s := cfg.Setpass
		if s.ResetMode != "link" || s.ResetMinTime.D != 3*time.Second || s.ResetTokenTTL.D != 24*time.Hour ||
			len(s.ResetProtectedRoles) != 1 || s.ResetProtectedRoles[0] != "admin" || s.ResetAccountLimit != 3 ||
			s.ResetRevokeTokens || s.ResetUser != "" || s.ResetUserDomain != "Default" {
			t.Errorf("reset defaults: %+v", s)
		}
	})
	t.Run("password from the environment", func(t *testing.T) {
		cfg, err := parse(t, "[setpass]\nreset_user = \"kaizen-reset\"\n", map[string]string{"KAIZEN_SETPASS_RESET_PASSWORD": "s3cret-reset"})
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Setpass.ResetPassword.Reveal(); got != "s3cret-reset" || cfg.Setpass.ResetPassword.Source() != "env KAIZEN_SETPASS_RESET_PASSWORD" {
			t.Errorf("reset password %q from %q", got, cfg.Setpass.ResetPassword.Source())
		}
		var b strings.Builder
		if err := cfg.WriteRedacted(&b); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "s3cret-reset") || !strings.Contains(b.String(), "setpass.reset_password: set, from env") {
			t.Errorf("config print:\n%s", b.String())
		}
	})
	tests := []struct{ name, doc, key, msg string }{
		{"mode", "reset_mode = \"email\"", "setpass.reset_mode", "not one of"},
		{"min time too short", "reset_min_time = \"10ms\"", "setpass.reset_min_time", "between 100ms and 20s"},
		{"min time malformed", "reset_min_time = \"soon\"", "setpass.reset_min_time", "malformed duration"},
		{"ttl", "reset_token_ttl = \"5s\"", "setpass.reset_token_ttl", "at least 1m"},
		{"empty protected role", "reset_protected_roles = [\"admin\", \" \"]", "setpass.reset_protected_roles[1]", "empty role name"},
		{"account limit", "reset_account_limit = 0", "setpass.reset_account_limit", "at least 1"},
		{"user without password", "reset_user = \"kaizen-reset\"", "setpass.reset_password", "required with setpass.reset_user"},
		{"password without user", "reset_password = \"x\"", "setpass.reset_password", "reset_user is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, "[setpass]\n"+tt.doc+"\n", nil)
			for _, p := range problems(t, err) {
				if p.Key == tt.key && strings.Contains(p.Message, tt.msg) {
					return
				}
			}
			t.Errorf("want problem %s: ...%s..., got:\n%v", tt.key, tt.msg, err)
		})
	}
}
