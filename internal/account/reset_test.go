package account_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
)

func (e *env) resetter() *account.Resetter {
	return account.NewResetter(e.ops, e.sp, e.ob, e.rec, bytes.NewReader(bytes.Repeat([]byte{9}, 1024)), e.domain.Name)
}

func TestReset(t *testing.T) {
	t.Run("with setpass's reset credential", func(t *testing.T) {
		e := newEnv(t)
		u := e.user(t, "ada@example.org", "ada@example.org", false)
		for _, user := range []string{u.ID, "ADA@example.org"} {
			t.Run(user, func(t *testing.T) {
				e.ob.msgs, e.ev.evs, e.sp.resets = nil, nil, nil
				res, err := e.resetter().Reset(t.Context(), account.ResetRequest{User: user})
				if err != nil {
					t.Fatal(err)
				}
				if res.User.ID != u.ID || res.To != "ada@example.org" || res.TemporaryPassword || res.PINReplaced || !res.Queued ||
					res.MailKey != account.PasswordResetKey(u.ID, res.Issued.ExpiresAt) {
					t.Errorf("result %+v", res)
				}
				if want := []call{{u.ID, "", ""}}; !slices.Equal(e.sp.resets, want) {
					t.Errorf("setpass resets %v, want %v", e.sp.resets, want)
				}
				if e.ks.Password(u.ID) != "original" {
					t.Error("the password was replaced although setpass can reset")
				}
				m := e.ob.msgs[0]
				if d, ok := m.data.(mail.PasswordResetData); !ok || m.kind != mail.KindPasswordReset || d.Link != res.Issued.URL || m.to[0].Address != "ada@example.org" {
					t.Errorf("queued %+v", m)
				}
				if got, want := e.ev.actions(), []string{"setpass.reset", "mail.queue"}; !slices.Equal(got, want) {
					t.Errorf("audit %v, want %v", got, want)
				}
				if d := e.ev.evs[0].Details; d["temporary_password"] != "false" || d["pin_replaced"] != "false" {
					t.Errorf("setpass.reset details %v", d)
				}
			})
		}
	})

	t.Run("fallback without a reset credential", func(t *testing.T) {
		e := newEnv(t)
		u := e.user(t, "bob@example.org", "bob@example.org", false)
		e.sp.resetErrs = []error{fmt.Errorf("reset: %w", client.ErrResetUnsupported)}
		res, err := e.resetter().Reset(t.Context(), account.ResetRequest{User: u.ID, PIN: "9876"})
		if err != nil {
			t.Fatal(err)
		}
		pw := e.ks.Password(u.ID)
		if !res.TemporaryPassword || !res.PINReplaced || pw == "original" || len(pw) != 32 {
			t.Errorf("result %+v, password %q; want a temporary password", res, pw)
		}
		if want := []call{{u.ID, "", "9876"}, {u.ID, pw, "9876"}}; !slices.Equal(e.sp.resets, want) {
			t.Errorf("setpass resets %v, want %v", e.sp.resets, want)
		}
		if got, want := e.ev.actions(), []string{"user.password.reset-temporary", "setpass.reset", "mail.queue"}; !slices.Equal(got, want) {
			t.Errorf("audit %v, want %v", got, want)
		}
		if d := e.ev.evs[1].Details; d["temporary_password"] != "true" || d["pin_replaced"] != "true" {
			t.Errorf("setpass.reset details %v", d)
		}
	})

	tests := []struct {
		name      string
		user      func(e *env) string
		resetErrs []error
		wantErr   string
		wantIs    error
		changed   bool // the password was replaced
		actions   []string
	}{
		{"unknown user", func(e *env) string { return "nobody@example.org" }, nil, `no user "nobody@example.org" in domain "research"`, cloud.ErrNoUser, false, nil},
		{"no address", func(e *env) string { return e.user(t, "carol", "", false).ID }, nil, "keystone holds no email address for carol", nil, false, nil},
		{"no PIN on file", func(e *env) string { return e.user(t, "dan@example.org", "", false).Name },
			[]error{client.ErrResetNoPIN}, "run again with --pin NNNN; nothing was changed", nil, false, nil},
		{"setpass down", func(e *env) string { return e.user(t, "erin@example.org", "", false).Name },
			[]error{errors.New("connection refused")}, "asking setpass for a reset link for erin@example.org: connection refused", nil, false, nil},
		{"setpass down after the fallback", func(e *env) string { return e.user(t, "finn@example.org", "", false).Name },
			[]error{client.ErrResetUnsupported, errors.New("connection refused")}, "the account now has a temporary password no one knows", nil, true,
			[]string{"user.password.reset-temporary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			user := tt.user(e)
			e.sp.resetErrs = tt.resetErrs
			res, err := e.resetter().Reset(t.Context(), account.ResetRequest{User: user})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if res.TemporaryPassword != tt.changed || res.MailKey != "" || len(e.ob.msgs) != 0 {
				t.Errorf("result %+v, %d mails", res, len(e.ob.msgs))
			}
			if got := e.ev.actions(); !slices.Equal(got, tt.actions) {
				t.Errorf("audit %v, want %v", got, tt.actions)
			}
		})
	}
}

func TestResetAddress(t *testing.T) {
	for _, tt := range []struct {
		name string
		u    cloud.User
		want string
	}{
		{"email attribute", cloud.User{Name: "ada", Email: "ada@example.org"}, "ada@example.org"},
		{"name is an address", cloud.User{Name: "ada@example.org"}, "ada@example.org"},
		{"attribute wins", cloud.User{Name: "ada@example.org", Email: "lovelace@example.org"}, "lovelace@example.org"},
		{"no address", cloud.User{Name: "ada", Email: "Ada <ada@example.org>"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := account.ResetAddress(tt.u); got != tt.want {
				t.Errorf("%q, want %q", got, tt.want)
			}
		})
	}
}
