package account_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/cloud/cloudtest"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

var now = time.Date(2026, 3, 15, 9, 0, 0, 0, time.UTC)

// events is an audit log in memory.
type events struct {
	mu  sync.Mutex
	evs []store.Event
	err error
}

func (e *events) AppendEvent(ctx context.Context, ev store.Event) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return 0, e.err
	}
	e.evs = append(e.evs, ev)
	return int64(len(e.evs)), nil
}

func (e *events) actions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		out = append(out, ev.Action)
	}
	return out
}

type queued struct {
	key, kind string
	to        []netmail.Address
	data      any
}

// outbox is the outbox and its message store in memory.
type outbox struct {
	msgs []queued
	err  error
}

func (o *outbox) Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (int64, bool, error) {
	if o.err != nil {
		return 0, false, o.err
	}
	for i, m := range o.msgs {
		if m.key == key {
			return int64(i + 1), false, nil
		}
	}
	o.msgs = append(o.msgs, queued{key, kind, to, data})
	return int64(len(o.msgs)), true, nil
}

func (o *outbox) MessageByKey(ctx context.Context, key string) (store.Message, error) {
	for i, m := range o.msgs {
		if m.key == key {
			return store.Message{ID: int64(i + 1), Key: key, Kind: m.kind}, nil
		}
	}
	return store.Message{}, fmt.Errorf("message %s: %w", key, store.ErrNotFound)
}

type call struct{ user, temp, pin string }

// links is setpass's admin API: Issue and Reset.
type links struct {
	issued, resets []call
	issueErr       error
	resetErrs      []error // one per Reset call, in order
}

func (l *links) Issue(ctx context.Context, userID, temp, pin string) (client.Issued, error) {
	if l.issueErr != nil {
		return client.Issued{}, l.issueErr
	}
	l.issued = append(l.issued, call{userID, temp, pin})
	return client.Issued{URL: fmt.Sprintf("https://setpass.example.org/?token=t%d", len(l.issued)), ExpiresAt: now.Add(time.Duration(len(l.issued)) * time.Hour)}, nil
}

func (l *links) Reset(ctx context.Context, userID, pin, temp string) (client.Issued, error) {
	n := len(l.resets)
	l.resets = append(l.resets, call{userID, temp, pin})
	if n < len(l.resetErrs) && l.resetErrs[n] != nil {
		return client.Issued{}, l.resetErrs[n]
	}
	return client.Issued{URL: "https://setpass.example.org/reset?token=r", ExpiresAt: now.Add(24 * time.Hour)}, nil
}

type env struct {
	ks     *cloudtest.Fake
	ops    cloud.Ops
	domain cloud.Domain
	ev     *events
	ob     *outbox
	sp     *links
	rec    *account.Recorder
	iss    *account.Issuer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ks := cloudtest.New()
	d, err := ks.CreateDomain(t.Context(), "research", "")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ks: ks, ops: cloud.Ops{Identity: ks}, domain: d, ev: &events{}, ob: &outbox{}, sp: &links{}}
	e.rec = account.NewRecorder(e.ev, nil, "operator@example.org", "test", func() time.Time { return now })
	e.iss = account.NewIssuer(ks, e.sp, e.ob, e.ob, e.rec, bytes.NewReader(bytes.Repeat([]byte{7}, 1024)))
	return e
}

// user creates a user; owner marks it kaizen's.
func (e *env) user(t *testing.T, name, email string, owner bool) cloud.User {
	t.Helper()
	nu := cloud.NewUser{DomainID: e.domain.ID, Name: name, Email: email, Password: "original"}
	if owner {
		nu.Owner = name
	}
	u, err := e.ks.CreateUser(t.Context(), nu)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestIssueLinkWelcome(t *testing.T) {
	t.Run("new account", func(t *testing.T) {
		e := newEnv(t)
		u := e.user(t, "ada@example.org", "Ada@Example.org", true)
		link, err := e.iss.IssueLink(t.Context(), account.LinkRequest{User: u, TempPassword: "temp-from-creation", PIN: "1234",
			Welcome: mail.WelcomeData{Name: "Ada Lovelace", Username: u.Name, Project: "engines", PINFrom: "Bob"}})
		if err != nil {
			t.Fatal(err)
		}
		if link.Outcome != account.Issued || link.PasswordReplaced || !link.Queued || link.MailKey != "welcome:"+u.ID {
			t.Errorf("link = %+v", link)
		}
		if want := []call{{u.ID, "temp-from-creation", "1234"}}; !slices.Equal(e.sp.issued, want) {
			t.Errorf("setpass issued %v, want %v", e.sp.issued, want)
		}
		if e.ks.Password(u.ID) != "original" {
			t.Error("the password of a just-created account was replaced")
		}
		if len(e.ob.msgs) != 1 {
			t.Fatalf("queued %d mails", len(e.ob.msgs))
		}
		m := e.ob.msgs[0]
		want := mail.WelcomeData{Name: "Ada Lovelace", Username: u.Name, Project: "engines", PINFrom: "Bob", Link: link.Issued.URL, ExpiresAt: link.Issued.ExpiresAt}
		if m.kind != mail.KindWelcome || m.key != account.WelcomeKey(u.ID) || m.data != want || len(m.to) != 1 || m.to[0].Address != "Ada@Example.org" {
			t.Errorf("queued %+v, want a welcome to Ada@Example.org with %+v", m, want)
		}
		if got, want := e.ev.actions(), []string{"setpass.issue", "mail.queue"}; !slices.Equal(got, want) {
			t.Errorf("audit %v, want %v", got, want)
		}

		// Once queued, the welcome is never given again.
		link, err = e.iss.IssueLink(t.Context(), account.LinkRequest{User: u, PIN: "1234"})
		if err != nil || link.Outcome != account.AlreadyWelcomed {
			t.Errorf("second welcome: %+v, %v; want AlreadyWelcomed", link, err)
		}
		if len(e.sp.issued) != 1 || len(e.ob.msgs) != 1 || len(e.ev.actions()) != 2 || e.ks.Password(u.ID) != "original" {
			t.Error("the second welcome changed something")
		}
		if ok, err := e.iss.Welcomed(t.Context(), u.ID); !ok || err != nil {
			t.Errorf("Welcomed = %v, %v", ok, err)
		}
	})

	t.Run("password gone with an earlier run", func(t *testing.T) {
		e := newEnv(t)
		u := e.user(t, "bob@example.org", "", true)
		link, err := e.iss.IssueLink(t.Context(), account.LinkRequest{User: u, PIN: "4321"})
		if err != nil {
			t.Fatal(err)
		}
		pw := e.ks.Password(u.ID)
		if !link.PasswordReplaced || pw == "original" || len(pw) != 32 {
			t.Errorf("password %q replaced=%v; want a fresh 32-character temporary password", pw, link.PasswordReplaced)
		}
		if want := []call{{u.ID, pw, "4321"}}; !slices.Equal(e.sp.issued, want) {
			t.Errorf("setpass issued %v, want the new password", e.sp.issued)
		}
		if e.ob.msgs[0].to[0].Address != "bob@example.org" {
			t.Errorf("mailed to %v; want the name when there is no email attribute", e.ob.msgs[0].to)
		}
		if got, want := e.ev.actions(), []string{"user.password.unused-reset", "setpass.issue", "mail.queue"}; !slices.Equal(got, want) {
			t.Errorf("audit %v, want %v", got, want)
		}
	})

	t.Run("not kaizen's", func(t *testing.T) {
		e := newEnv(t)
		u := e.user(t, "carol@example.org", "carol@example.org", false)
		link, err := e.iss.IssueLink(t.Context(), account.LinkRequest{User: u, PIN: "1111"})
		if err != nil || link.Outcome != account.NotKaizens {
			t.Fatalf("%+v, %v; want NotKaizens", link, err)
		}
		if len(e.sp.issued) != 0 || len(e.ob.msgs) != 0 || len(e.ev.actions()) != 0 || e.ks.Password(u.ID) != "original" {
			t.Error("an account kaizen did not create was touched")
		}
	})
}

func TestIssueLinkFailures(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(e *env)
		wantErr     string
		wantActions []string
	}{
		{"setpass down", func(e *env) { e.sp.issueErr = errors.New("connection refused") },
			"registering dan@example.org with setpass: connection refused", []string{"user.password.unused-reset"}},
		{"outbox down", func(e *env) { e.ob.err = errors.New("disk full") },
			"queuing the welcome mail for dan@example.org: disk full", []string{"user.password.unused-reset", "setpass.issue"}},
		{"user gone", func(e *env) {}, "setting a temporary password", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			u := e.user(t, "dan@example.org", "dan@example.org", true)
			tt.setup(e)
			if tt.name == "user gone" {
				if err := e.ks.DeleteUser(t.Context(), u.ID); err != nil {
					t.Fatal(err)
				}
			}
			link, err := e.iss.IssueLink(t.Context(), account.LinkRequest{User: u, PIN: "8080"})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if link.MailKey != "" || len(e.ob.msgs) != 0 {
				t.Errorf("a failed link reports or queued mail: %+v", link)
			}
			if got := e.ev.actions(); !slices.Equal(got, tt.wantActions) {
				t.Errorf("audit %v, want %v", got, tt.wantActions)
			}
			// The next call, with everything up, welcomes the user.
			e.sp.issueErr, e.ob.err = nil, nil
			if tt.name != "user gone" {
				if link, err := e.iss.IssueLink(t.Context(), account.LinkRequest{User: u, PIN: "8080"}); err != nil || !link.Queued {
					t.Errorf("retry: %+v, %v", link, err)
				}
			}
		})
	}
}

func TestIssueLinkReminder(t *testing.T) {
	e := newEnv(t)
	u := e.user(t, "erin@example.org", "erin@example.org", true)
	req := account.LinkRequest{User: u, Purpose: account.Reminder, ReminderLedgerKey: "link-reminder:" + u.ID + ":reminder-1",
		To: netmail.Address{Name: "Erin", Address: "erin@example.org"}, Reminder: mail.LinkReminderData{Name: "Erin", Username: u.Name}}
	link, err := e.iss.IssueLink(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if link.MailKey != account.ReminderKey(req.ReminderLedgerKey, link.Issued.ExpiresAt) || !link.PasswordReplaced {
		t.Errorf("link = %+v", link)
	}
	if e.sp.issued[0].pin != "" || e.sp.issued[0].temp != e.ks.Password(u.ID) {
		t.Errorf("setpass issued %+v; want the new password and the PIN on file", e.sp.issued[0])
	}
	m := e.ob.msgs[0]
	if d, ok := m.data.(mail.LinkReminderData); !ok || m.kind != mail.KindLinkReminder || d.Link != link.Issued.URL || m.to[0].Name != "Erin" {
		t.Errorf("queued %+v", m)
	}
	// A reminder is no welcome: each call gives a new link.
	if _, err := e.iss.IssueLink(t.Context(), req); err != nil || len(e.ob.msgs) != 2 {
		t.Errorf("second reminder: %v, %d mails", err, len(e.ob.msgs))
	}
	if _, err := e.iss.IssueLink(t.Context(), account.LinkRequest{User: u, Purpose: account.Reminder}); err == nil {
		t.Error("a reminder without its ledger key was accepted")
	}
}

func TestKeys(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	for _, tt := range []struct{ name, got, want string }{
		{"welcome", account.WelcomeKey("u1"), "welcome:u1"},
		{"password reset", account.PasswordResetKey("u1", at), "password-reset:u1:1700000000123456789"},
		{"reminder", account.ReminderKey("job:u1:reminder-5", at), "job:u1:reminder-5:1700000000123456"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestRecorder(t *testing.T) {
	ev := &events{}
	var logs bytes.Buffer
	r := account.NewRecorder(ev, slog.New(slog.NewTextHandler(&logs, nil)), "op@example.org", "addusers import", func() time.Time { return now })
	r.Record(t.Context(), "user.create", "u1", map[string]string{"name": "ada"})
	r.With("addusers import row 7", "row", 7).Record(t.Context(), "project.create", "p1", nil)
	if len(ev.evs) != 2 {
		t.Fatalf("%d events", len(ev.evs))
	}
	want := store.Event{At: now, Actor: "op@example.org", Action: "user.create", Target: "u1", Source: "addusers import", Details: map[string]string{"name": "ada"}}
	if got := ev.evs[0]; got.At != want.At || got.Actor != want.Actor || got.Action != want.Action || got.Target != want.Target || got.Source != want.Source || got.Details["name"] != "ada" {
		t.Errorf("event %+v, want %+v", got, want)
	}
	if ev.evs[1].Source != "addusers import row 7" {
		t.Errorf("With: source %q", ev.evs[1].Source)
	}
	if !strings.Contains(logs.String(), "row=7") || !strings.Contains(logs.String(), "action=user.create") {
		t.Errorf("log:\n%s", logs.String())
	}

	// A failing write is logged, not returned; no store logs only.
	ev.err = errors.New("database is locked")
	r.Record(t.Context(), "role.assign", "p1", nil)
	if !strings.Contains(logs.String(), "writing an audit record") {
		t.Errorf("a failed write was not logged:\n%s", logs.String())
	}
	account.NewRecorder(nil, nil, "op", "plan", nil).Record(t.Context(), "x", "y", nil)
}
