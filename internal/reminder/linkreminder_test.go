package reminder_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
	"github.com/kaizen-onboard/kaizen/internal/testenv/setpasstest"
	"github.com/kaizen-onboard/kaizen/templates"
)

// Helpers shared by linkreminder_test.go, quotaexpiry_test.go and
// bench_test.go; their names start with lr.

// lrClock is the one clock of a test: setpass, the outbox and the runs.
type lrClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *lrClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lrClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func lrOpenStore(tb testing.TB) store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+tb.TempDir()+"/kaizen.db", slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// lrOutbox is the real mail outbox queuing into st.
func lrOutbox(tb testing.TB, st store.Store, now func() time.Time) *kmail.Outbox {
	tb.Helper()
	r, err := kmail.NewRenderer(templates.FS, "", kmail.Common{
		CloudName: "Test Cloud", From: "Test Cloud <cloud@example.org>",
		Support: "support@example.org", Helpdesk: "helpdesk@example.org",
	})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := kmail.NewComposer("Test Cloud <cloud@example.org>", "", now, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return kmail.NewOutbox(st, r, c, nil, kmail.OutboxOptions{Now: now, Keys: mailtest.Keys(tb)})
}

// lrQueued is one message a job queued.
type lrQueued struct {
	Key, Kind string
	To        []string
	Data      any
}

// lrMailer passes messages on to the real outbox and keeps what was queued.
type lrMailer struct {
	next reminder.Mailer
	mu   sync.Mutex
	msgs []lrQueued
	fail error // returned instead of queuing, when set
}

func (m *lrMailer) Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (int64, bool, error) {
	m.mu.Lock()
	fail := m.fail
	m.mu.Unlock()
	if fail != nil {
		return 0, false, fail
	}
	id, created, err := m.next.Queue(ctx, key, kind, to, data)
	if err == nil && created {
		m.mu.Lock()
		defer m.mu.Unlock()
		var rcpts []string
		for _, a := range to {
			rcpts = append(rcpts, a.Address)
		}
		m.msgs = append(m.msgs, lrQueued{key, kind, rcpts, data})
	}
	return id, created, err
}

// take returns the messages queued since the last take.
func (m *lrMailer) take() []lrQueued {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.msgs
	m.msgs = nil
	return out
}

func lrRun(t *testing.T, j reminder.Job, now time.Time, dry bool) reminder.Result {
	t.Helper()
	res, err := j.Run(t.Context(), reminder.RunContext{Now: now, DryRun: dry, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("run at %s: %v (result %+v)", now.Format(time.RFC3339), err, res)
	}
	return res
}

// lrSetpass is a real setpass service on an httptest server.
type lrSetpass struct {
	srv    *httptest.Server
	client *client.Client
}

const lrTTL = 72 * time.Hour

func newLRSetpass(t *testing.T, ks *testenv.KeystoneEnv, st store.Store, clock *lrClock) *lrSetpass {
	t.Helper()
	sp := setpasstest.New(t, ks, setpasstest.Options{
		Store: st, Now: clock.Now, Branding: setpass.Branding{CloudName: "Test Cloud", Support: "support@example.org"},
		Settings: setpass.Settings{SecretKey: []byte("0123456789abcdef0123456789abcdef-reminder-test"), TokenTTL: lrTTL},
	})
	return &lrSetpass{srv: sp.HTTP, client: sp.Client}
}

// get opens a link as a browser would and returns the status.
func (s *lrSetpass) get(t *testing.T, link string) int {
	t.Helper()
	resp, err := s.srv.Client().Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// complete submits the form of link with pin and a new password.
func (s *lrSetpass) complete(t *testing.T, link, pin, password string) int {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"token": {u.Query().Get("token")}, "pin": {pin}, "password": {password}, "confirm": {password}}
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// lrUser creates a kaizen account (owner attribute set) with a temporary
// password, as addusers does.
func lrUser(t *testing.T, ks *testenv.KeystoneEnv, domainID, email, fullName, temp string) string {
	t.Helper()
	u, err := users.Create(t.Context(), ks.Identity, users.CreateOpts{
		Name: email, DomainID: domainID, Password: temp, Description: fullName,
		Extra: map[string]any{"email": email, cloud.OwnerAttr: email},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func lrCanLogIn(t *testing.T, ks *testenv.KeystoneEnv, domainID, name, password string) bool {
	t.Helper()
	_, err := ks.AuthenticateUser(t.Context(), domainID, name, password)
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Fatalf("authenticating %s: %v", name, err)
	}
	return err == nil
}

func lrKinds(msgs []lrQueued) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Kind+" to "+strings.Join(m.To, ","))
	}
	return out
}

// TestLinkReminderKeystone runs the job against the real Keystone, a real
// setpass service and SQLite: dry run, reminder with a working re-issued
// link (same PIN), no duplicate, a second reminder for the next link, the
// helpdesk after give_up, once.
func TestLinkReminderKeystone(t *testing.T) {
	ks := testenv.Keystone(t)
	ctx := t.Context()
	domainID, _ := ks.Domain(t)
	st := lrOpenStore(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := &lrClock{now: t0}
	sp := newLRSetpass(t, ks, st, clock)
	mailer := &lrMailer{next: lrOutbox(t, st, clock.Now)}
	kusers := reminder.KeystoneUsers{Identity: cloud.NewKeystone(ks.Identity)}

	const pin = "4821"
	const adaTemp, bobTemp = "Ada-temp-Passw0rd-1", "Bob-temp-Passw0rd-2"
	ada := lrUser(t, ks, domainID, "ada@example.org", "Ada Lovelace", adaTemp)
	bob := lrUser(t, ks, domainID, "bob@example.org", "Bob Babbage", bobTemp)
	// An account kaizen did not create, with a link: never touched.
	other, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: "other@example.org", DomainID: domainID,
		Password: "Other-Passw0rd-3", Extra: map[string]any{"email": "other@example.org"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	adaFirst, err := sp.client.Issue(ctx, ada, adaTemp, pin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.client.Issue(ctx, bob, bobTemp, "1357"); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.client.Issue(ctx, other.ID, "Other-Passw0rd-3", "2468"); err != nil {
		t.Fatal(err)
	}

	job, err := reminder.NewLinkReminder(config.Job{Name: "link-reminder", Kind: "link-reminder"}, reminder.LinkReminderDeps{
		Tokens: st, Ledger: st, Mail: mailer, Users: kusers, Passwords: kusers, Setpass: sp.client,
		Helpdesk: "helpdesk@example.org", Audit: st,
	})
	if err != nil {
		t.Fatal(err)
	}

	// Not due yet (due from after minus the job's slack, 47h).
	clock.Set(t0.Add(46 * time.Hour))
	if res := lrRun(t, job, clock.Now(), false); res.Sent != 0 || res.Skipped != 3 {
		t.Fatalf("at +46h: %+v", res)
	}

	at49 := t0.Add(49 * time.Hour)
	clock.Set(at49)
	t.Run("dry run changes nothing", func(t *testing.T) {
		res := lrRun(t, job, at49, true)
		if res.Sent != 2 || len(res.Lines) != 2 || !strings.Contains(strings.Join(res.Lines, "\n"), "would re-issue the set-password link of ada@example.org") {
			t.Fatalf("dry run: %+v", res)
		}
		if got := mailer.take(); len(got) != 0 {
			t.Errorf("dry run queued %v", lrKinds(got))
		}
		if code := sp.get(t, adaFirst.URL); code != http.StatusOK {
			t.Errorf("dry run replaced Ada's link: GET %d", code)
		}
		if !lrCanLogIn(t, ks, domainID, "ada@example.org", adaTemp) {
			t.Error("dry run changed Ada's password")
		}
		if _, ok, err := st.Recorded(ctx, reminder.LedgerKey("link-reminder", ada, fmt.Sprintf("reminder-%d", t0.Unix()))); err != nil || ok {
			t.Errorf("dry run recorded a reminder: %v %v", ok, err)
		}
	})

	res := lrRun(t, job, at49, false)
	msgs := mailer.take()
	if res.Sent != 2 || len(msgs) != 2 {
		t.Fatalf("at +49h: %+v, queued %v", res, lrKinds(msgs))
	}
	links := map[string]kmail.LinkReminderData{}
	for _, m := range msgs {
		d, ok := m.Data.(kmail.LinkReminderData)
		if m.Kind != kmail.KindLinkReminder || !ok {
			t.Fatalf("queued %s %T", m.Kind, m.Data)
		}
		links[m.To[0]] = d
	}
	adaLink := links["ada@example.org"]
	if adaLink.Name != "Ada Lovelace" || adaLink.Username != "ada@example.org" ||
		!strings.HasPrefix(adaLink.Link, sp.srv.URL+"/?token=") || !adaLink.ExpiresAt.Equal(at49.Add(lrTTL)) {
		t.Fatalf("Ada's reminder: %+v", adaLink)
	}
	if _, ok, err := st.Recorded(ctx, reminder.LedgerKey("link-reminder", ada, fmt.Sprintf("reminder-%d", t0.Unix()))); err != nil || !ok {
		t.Errorf("the reminder of Ada's first link is not in the ledger: %v %v", ok, err)
	}
	if _, ok := links["other@example.org"]; ok {
		t.Fatal("an account kaizen did not create was reminded")
	}
	if n, err := st.OutboxCounts(ctx); err != nil || n[store.StatusPending] != 2 {
		t.Fatalf("outbox: %v %v", n, err)
	}
	if code := sp.get(t, adaFirst.URL); code != http.StatusGone {
		t.Errorf("the first link still works after the re-issue: %d", code)
	}
	if lrCanLogIn(t, ks, domainID, "ada@example.org", adaTemp) {
		t.Error("the first temporary password still works")
	}
	if code := sp.get(t, adaLink.Link); code != http.StatusOK {
		t.Fatalf("GET the reminder's link: %d", code)
	}
	if evs, err := st.Events(ctx, time.Time{}, ada, 0); err != nil || !slices.ContainsFunc(evs, func(e store.Event) bool {
		return e.Action == "user.password.unused-reset"
	}) {
		t.Errorf("no audit record of the new temporary password: %v %v", evs, err)
	}

	// Again, an hour later: nothing new.
	clock.Set(at49.Add(time.Hour))
	if res := lrRun(t, job, clock.Now(), false); res.Sent != 0 || len(mailer.take()) != 0 {
		t.Fatalf("second run: %+v", res)
	}

	// Ada sets her password through the new link with the PIN she chose
	// at sign-up.
	const adaNew = "ada's own long password"
	if code := sp.complete(t, adaLink.Link, pin, adaNew); code != http.StatusOK {
		t.Fatalf("completing the reminder's link with the original PIN: %d", code)
	}
	if !lrCanLogIn(t, ks, domainID, "ada@example.org", adaNew) {
		t.Fatal("Ada cannot log in with the password she set")
	}

	// Bob's re-issued link is a new generation: one more reminder 48 h
	// after it; Ada, done, gets nothing.
	clock.Set(at49.Add(49 * time.Hour))
	res = lrRun(t, job, clock.Now(), false)
	msgs = mailer.take()
	if res.Sent != 1 || len(msgs) != 1 || msgs[0].To[0] != "bob@example.org" || msgs[0].Kind != kmail.KindLinkReminder {
		t.Fatalf("at +98h: %+v %v", res, lrKinds(msgs))
	}
	bobLink := msgs[0].Data.(kmail.LinkReminderData)

	// Day 8: the helpdesk hears about Bob, once; Bob gets no reminder.
	day8 := t0.Add(8 * 24 * time.Hour)
	clock.Set(day8)
	if res := lrRun(t, job, day8, true); res.Sent != 1 || !strings.Contains(res.Lines[0], "would tell helpdesk@example.org that bob@example.org") {
		t.Fatalf("dry run at day 8: %+v", res)
	}
	res = lrRun(t, job, day8, false)
	msgs = mailer.take()
	if res.Sent != 1 || len(msgs) != 1 || msgs[0].Kind != kmail.KindHelpdeskNotify || !slices.Equal(msgs[0].To, []string{"helpdesk@example.org"}) {
		t.Fatalf("at day 8: %+v %v", res, lrKinds(msgs))
	}
	notice := msgs[0].Data.(kmail.HelpdeskNotifyData)
	if len(notice.Items) != 1 || notice.Items[0].Username != "bob@example.org" || !strings.Contains(notice.Summary, "2026-03-02") {
		t.Errorf("notice: %+v", notice)
	}
	if code := sp.get(t, bobLink.Link); code != http.StatusGone { // expired, not replaced
		t.Errorf("Bob's last link at day 8: %d", code)
	}
	for _, at := range []time.Time{day8.Add(time.Hour), day8.Add(3 * 24 * time.Hour)} {
		clock.Set(at)
		if res := lrRun(t, job, at, false); res.Sent != 0 || len(mailer.take()) != 0 {
			t.Fatalf("after the notice, at %s: %+v", at, res)
		}
	}
	if !lrCanLogIn(t, ks, domainID, "other@example.org", "Other-Passw0rd-3") {
		t.Error("the password of an account kaizen did not create was changed")
	}
}

// lrFakes are in-process stand-ins for Keystone and setpass; the store and
// the outbox stay real.
type lrFakes struct {
	mu        sync.Mutex
	users     map[string]reminder.UserInfo
	passwords map[string]string
	issued    map[string]int // per user
	lookups   int
	issueErr  error
	st        store.Store
	now       func() time.Time
	ttl       time.Duration
}

func newLRFakes(st store.Store, now func() time.Time) *lrFakes {
	return &lrFakes{users: map[string]reminder.UserInfo{}, passwords: map[string]string{},
		issued: map[string]int{}, st: st, now: now, ttl: lrTTL}
}

func (f *lrFakes) User(ctx context.Context, id string) (reminder.UserInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	u, ok := f.users[id]
	if !ok {
		return reminder.UserInfo{}, fmt.Errorf("user %s: %w", id, reminder.ErrNoUser)
	}
	return u, nil
}

func (f *lrFakes) SetPassword(ctx context.Context, userID, pw string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passwords[userID] = pw
	return nil
}

// Issue stores a token as setpass does (the hash of a random token), so
// the next PendingTokens sees the new generation.
func (f *lrFakes) Issue(ctx context.Context, userID, temp, pin string) (client.Issued, error) {
	f.mu.Lock()
	err := f.issueErr
	f.mu.Unlock()
	if err != nil {
		return client.Issued{}, err
	}
	if temp == "" {
		return client.Issued{}, errors.New("temporary password required")
	}
	tok := rand.Text()
	now := f.now()
	t := store.Token{Hash: []byte(tok), UserID: userID, PINHMAC: []byte("pin"), SealedPassword: []byte("sealed"),
		Purpose: "welcome", CreatedAt: now, ExpiresAt: now.Add(f.ttl)}
	if err := f.st.PutToken(ctx, t); err != nil {
		return client.Issued{}, err
	}
	f.mu.Lock()
	f.issued[userID]++
	f.mu.Unlock()
	return client.Issued{Token: tok, URL: "https://setpass.example.org/?token=" + tok, ExpiresAt: t.ExpiresAt}, nil
}

func (f *lrFakes) addUser(t testing.TB, id string, created time.Time, owner bool) {
	t.Helper()
	u := reminder.UserInfo{ID: id, Name: id + "@example.org", Email: id + "@example.org", FullName: "User " + id, Enabled: true}
	if owner {
		u.Owner = u.Email
	}
	f.mu.Lock()
	f.users[id] = u
	f.mu.Unlock()
	err := f.st.PutToken(context.Background(), store.Token{Hash: []byte("first-" + id), UserID: id, PINHMAC: []byte("pin"),
		SealedPassword: []byte("sealed"), Purpose: "welcome", CreatedAt: created, ExpiresAt: created.Add(f.ttl)})
	if err != nil {
		t.Fatal(err)
	}
}

func lrFakeJob(t testing.TB, j config.Job, st store.Store, f *lrFakes, m reminder.Mailer, max int) reminder.Job {
	t.Helper()
	if j.Name == "" {
		j.Name = "link-reminder"
	}
	job, err := reminder.NewLinkReminder(j, reminder.LinkReminderDeps{
		Tokens: st, Ledger: st, Mail: m, Users: f, Passwords: f, Setpass: f,
		Helpdesk: "helpdesk@example.org", MaxReminders: max,
	})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// TestLinkReminderSchedule follows one user who never acts through the
// default policy: reminders at about 2, 4 and 6 days, the helpdesk on day 7.
func TestLinkReminderSchedule(t *testing.T) {
	st := lrOpenStore(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := &lrClock{now: t0}
	f := newLRFakes(st, clock.Now)
	f.addUser(t, "u1", t0, true)
	f.addUser(t, "stranger", t0, false) // not kaizen's
	mailer := &lrMailer{next: lrOutbox(t, st, clock.Now)}
	job := lrFakeJob(t, config.Job{}, st, f, mailer, 0)

	var got []string
	for h := 0; h <= 10*24; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		clock.Set(at)
		lrRun(t, job, at, false)
		for _, m := range mailer.take() {
			got = append(got, fmt.Sprintf("+%dh %s", h, m.Kind))
		}
	}
	// An hourly schedule reminds within the hour of slack (see slack):
	// each re-issued link is due 47h after the previous reminder.
	want := []string{"+47h link-reminder", "+94h link-reminder", "+141h link-reminder", "+168h helpdesk-notify"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// One lookup per action for u1, one for the stranger (then known).
	if f.lookups != 5 {
		t.Errorf("%d Keystone lookups, want 5", f.lookups)
	}
	if f.issued["stranger"] != 0 || f.passwords["stranger"] != "" {
		t.Error("the stranger's link was re-issued")
	}
}

// TestLinkReminderCap: with a short after, MaxReminders bounds the
// reminders (counted in the ledger); give_up still comes.
func TestLinkReminderCap(t *testing.T) {
	st := lrOpenStore(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := &lrClock{now: t0}
	f := newLRFakes(st, clock.Now)
	f.addUser(t, "u1", t0, true)
	mailer := &lrMailer{next: lrOutbox(t, st, clock.Now)}
	job := lrFakeJob(t, config.Job{After: config.Dur(time.Hour), GiveUp: config.Dur(24 * time.Hour)}, st, f, mailer, 2)
	var kinds []string
	for h := 0; h <= 30; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		clock.Set(at)
		lrRun(t, job, at, false)
		for _, m := range mailer.take() {
			kinds = append(kinds, fmt.Sprintf("+%dh %s", h, m.Kind))
		}
	}
	want := []string{"+1h link-reminder", "+2h link-reminder", "+24h helpdesk-notify"}
	if !slices.Equal(kinds, want) {
		t.Errorf("got %q, want %q", kinds, want)
	}
}

// TestLinkReminderRetry: a failure after the ledger key was recorded
// forgets it, so the next run sends the reminder.
func TestLinkReminderRetry(t *testing.T) {
	st := lrOpenStore(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := t0.Add(49 * time.Hour)
	clock := &lrClock{now: at}
	f := newLRFakes(st, clock.Now)
	f.addUser(t, "u1", t0, true)
	mailer := &lrMailer{next: lrOutbox(t, st, clock.Now)}
	job := lrFakeJob(t, config.Job{}, st, f, mailer, 0)

	f.issueErr = errors.New("setpass is down")
	res, err := job.Run(t.Context(), reminder.RunContext{Now: at})
	if err == nil || !strings.Contains(err.Error(), "setpass is down") || res.Sent != 0 {
		t.Fatalf("run with setpass down: %+v %v", res, err)
	}
	f.issueErr = nil
	if res := lrRun(t, job, at.Add(time.Minute), false); res.Sent != 1 {
		t.Fatalf("retry: %+v", res)
	}
	if got := mailer.take(); len(got) != 1 || got[0].Kind != kmail.KindLinkReminder {
		t.Fatalf("retry queued %v", lrKinds(got))
	}
	if res := lrRun(t, job, at.Add(2*time.Minute), false); res.Sent != 0 {
		t.Fatalf("a run after the retry: %+v", res)
	}

	// A failing outbox likewise.
	f2 := newLRFakes(st, clock.Now)
	f2.addUser(t, "u2", t0, true)
	mailer.fail = errors.New("disk full")
	job2 := lrFakeJob(t, config.Job{Name: "lr2"}, st, f2, mailer, 0)
	if _, err := job2.Run(t.Context(), reminder.RunContext{Now: at}); err == nil {
		t.Fatal("no error with the outbox failing")
	}
	mailer.fail = nil
	// The link was replaced before queuing failed: the new one is young,
	// yet the next run reminds at once, with another fresh link.
	if res := lrRun(t, job2, at.Add(time.Minute), false); res.Sent != 1 {
		t.Fatalf("retry after the outbox failed: %+v", res)
	}
	if f2.issued["u2"] != 2 {
		t.Errorf("u2's link issued %d times, want 2", f2.issued["u2"])
	}
	if res := lrRun(t, job2, at.Add(2*time.Minute), false); res.Sent != 0 {
		t.Fatalf("a run after the retry: %+v", res)
	}
	if _, ok, err := st.Recorded(t.Context(), reminder.LedgerKey("lr2", "u2", "retry")); ok || err != nil {
		t.Errorf("retry mark left: %v %v", ok, err)
	}
}

// TestLinkReminderConcurrentRuns: two overlapping runs (two replicas) on
// one store send each reminder once.
func TestLinkReminderConcurrentRuns(t *testing.T) {
	st := lrOpenStore(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := t0.Add(49 * time.Hour)
	clock := &lrClock{now: at}
	f := newLRFakes(st, clock.Now)
	for i := range 50 {
		f.addUser(t, fmt.Sprintf("u%02d", i), t0, true)
	}
	mailer := &lrMailer{next: lrOutbox(t, st, clock.Now)}
	a := lrFakeJob(t, config.Job{}, st, f, mailer, 0)
	b := lrFakeJob(t, config.Job{}, st, f, mailer, 0)
	var wg sync.WaitGroup
	for _, j := range []reminder.Job{a, b} {
		wg.Go(func() {
			if _, err := j.Run(t.Context(), reminder.RunContext{Now: at}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	per := map[string]int{}
	for _, m := range mailer.take() {
		per[m.To[0]]++
	}
	if len(per) != 50 {
		t.Errorf("%d users reminded, want 50", len(per))
	}
	for u, n := range per {
		if n != 1 {
			t.Errorf("%s reminded %d times", u, n)
		}
	}
	for u, n := range f.issued {
		if n != 1 {
			t.Errorf("%s's link issued %d times", u, n)
		}
	}
}

func TestLinkReminderConfig(t *testing.T) {
	st := lrOpenStore(t)
	f := newLRFakes(st, time.Now)
	deps := reminder.LinkReminderDeps{Tokens: st, Ledger: st, Mail: &lrMailer{}, Users: f, Passwords: f, Setpass: f}
	if _, err := reminder.NewLinkReminder(config.Job{Name: "x"}, deps); err == nil || !strings.Contains(err.Error(), "helpdesk") {
		t.Errorf("no helpdesk address: %v", err)
	}
	deps.Helpdesk = "helpdesk@example.org"
	if _, err := reminder.NewLinkReminder(config.Job{Name: "x", After: config.Dur(48 * time.Hour), GiveUp: config.Dur(24 * time.Hour)}, deps); err == nil {
		t.Error("give_up shorter than after accepted")
	}
	if _, err := reminder.NewLinkReminder(config.Job{Name: "x", To: []string{"not an address"}}, deps); err == nil {
		t.Error("a malformed to accepted")
	}
	deps.Setpass = nil
	if _, err := reminder.NewLinkReminder(config.Job{Name: "x"}, deps); err == nil {
		t.Error("missing Setpass accepted")
	}
}
