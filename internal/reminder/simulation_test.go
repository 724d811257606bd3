package reminder_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"google.golang.org/api/sheets/v4"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/setpasstest"
	"github.com/kaizen-onboard/kaizen/internal/testenv/sheetsfake"
	"github.com/kaizen-onboard/kaizen/templates"
)

// The sign-up sheet of TestThirtyDays.
const (
	simBook = "signups"
	simTab  = "Form Responses 1"
)

// simSettings is the settings file of TestThirtyDays: the jobs exactly as
// an operator declares them. Secrets come from the environment.
const simSettings = `
[store]
url = %[1]q

[sheet]
spreadsheet_id = %[2]q
worksheet = %[3]q
credentials_file = %[4]q
endpoint = %[5]q

[setpass]
url = %[6]q
token_ttl = "72h"

[mail]
transport = "smtp"
from = "Test Cloud <cloud@example.org>"
support = "support@example.org"
helpdesk = "helpdesk@example.org"
cloud_name = "Test Cloud"

[mail.smtp]
host = %[7]q
port = %[8]d
tls = "starttls"
ca_file = %[9]q
username = %[10]q
ehlo_name = "kaizen.test"
timeout = "10s"

[reminders]
timezone = "America/New_York"

[[reminders.job]]
name = "approver-digest"
kind = "approver-digest"
schedule = "0 9 * * *"
start = "24h"
interval = "24h"
to = ["Approvers <approvers@example.org>"]

[[reminders.job]]
name = "helpdesk-notify"
kind = "helpdesk-notify"
schedule = "@hourly"

[[reminders.job]]
name = "link-reminder"
kind = "link-reminder"
schedule = "CRON_TZ=America/New_York 0 10 * * *"
after = "48h"
give_up = "7d"

[[reminders.job]]
name = "quota-expiry"
kind = "quota-expiry"
schedule = "0 8 * * *"
days_before = [30, 7, 1]

[[reminders.job]]
name = "outbox"
kind = "outbox"
schedule = "@every 10m"
`

// simDaemon is one life of the reminders daemon: what cmd/reminders wires
// from the settings, on the simulated clock.
type simDaemon struct {
	sched  *reminder.Scheduler
	runner *reminder.Runner
	close  func()
}

// simMail is one message the SMTP server received.
type simMail struct {
	at      time.Time // sim time of the outbox run that delivered it
	date    time.Time // the Date header: when it was queued
	to      string
	kind    string // from the outbox row with its Message-ID
	subject string
	text    string // the text/plain part, decoded
}

// TestThirtyDays is issue 6's done-when: 30 simulated days of the
// configured schedules (America/New_York, across the spring-forward DST
// change on day 6) against the Sheets fake through the real Google client,
// one SQLite store, the real Keystone with a real setpass service, and the
// in-process SMTP server (STARTTLS + AUTH) fed by the real outbox. The
// daemon restarts on day 15, while the SMTP server is down and a digest is
// waiting in the outbox. The test asserts exactly which mails arrived and
// when, that each link reminder carries a new working link and kills the
// previous one, and that nothing was sent twice.
func TestThirtyDays(t *testing.T) {
	began := time.Now()
	ks := testenv.Keystone(t)
	ctx := t.Context()
	domainID, _ := ks.Domain(t)
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))

	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// Day 0 is Monday 2026-03-02; clocks spring forward on day 6 (Sunday
	// 2026-03-08), so from then on 09:00 is 13:00 UTC instead of 14:00.
	at := func(day, hour, minute int) time.Time { return time.Date(2026, 3, 2+day, hour, minute, 0, 0, ny) }
	start, end, restart := at(0, 0, 0), at(30, 0, 0), at(15, 9, 30)
	clock := reminder.NewSimClock(start)
	dayOf := func(t time.Time) int {
		y, m, d := t.In(ny).Date()
		return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour))
	}
	stamp := func(t time.Time) string { return t.Format(time.RFC3339) } // as the sheet jobs stamp
	formTime := func(t time.Time) string { return t.In(ny).Format("1/2/2006 15:04:05") }

	// The SMTP server; its CA goes in a file, as an operator's would.
	smtpSrv := testenv.NewSMTP(t)
	caFile := smtpSrv.CAFile(t)

	// The sign-up sheet at the start: Ann waits for approval; Eve was
	// processed by addusers and Fay announced by hand long ago, so neither
	// is mailed about. Rows added later: Ben (day 2), Cat (day 5), Dan (day
	// 12), Eli (day 20).
	fake := sheetsfake.New(t)
	fake.AddSpreadsheet(simBook, "Sign-ups")
	fake.AddSheet(simBook, simTab, [][]string{
		{"Timestamp", "Email", "First Name", "Last Name", "Project Name", "Comment", "Approved", "Status", "Reminder Sent", "Helpdesk Notified"},
		{formTime(at(-1, 8, 0)), "ann@example.org", "Ann", "Archer", "proj-ann", "GPU work"},
		{formTime(at(-10, 10, 0)), "eve@example.org", "Eve", "Early", "proj-eve", "", "yes", "done"},
		{formTime(at(-5, 10, 0)), "fay@example.org", "Fay", "Filed", "proj-fay", "", "yes", "", "", stamp(at(-4, 10, 0))},
	})
	sheetSvc := fake.Service(ctx, t) // the approvers' and the form's hands
	addRow := func(submitted time.Time, first, last string) {
		t.Helper()
		email := strings.ToLower(first) + "@example.org"
		vr := &sheets.ValueRange{Values: [][]any{{formTime(submitted), email, first, last, "proj-" + strings.ToLower(first), ""}}}
		if _, err := sheetSvc.Spreadsheets.Values.Append(simBook, "'"+simTab+"'!A1", vr).ValueInputOption("RAW").Context(ctx).Do(); err != nil {
			t.Fatalf("adding %s's row: %v", first, err)
		}
	}
	setApproved := func(row int, value string) {
		t.Helper()
		vr := &sheets.ValueRange{Values: [][]any{{value}}}
		if _, err := sheetSvc.Spreadsheets.Values.Update(simBook, fmt.Sprintf("'%s'!G%d", simTab, row), vr).ValueInputOption("RAW").Context(ctx).Do(); err != nil {
			t.Fatalf("approving row %d: %v", row, err)
		}
	}

	// setpass's server; its handler is built from the settings below.
	spSrv := setpasstest.NewUnstarted(t)
	spURL := spSrv.URL

	settingsFile := filepath.Join(dir, "settings.toml")
	doc := fmt.Sprintf(simSettings, "sqlite://"+filepath.Join(dir, "kaizen.db"), simBook, simTab, fake.ServiceAccountFile(t),
		fake.Endpoint(), spURL, smtpSrv.Host(), smtpSrv.Port(), caFile, smtpSrv.Username())
	if err := os.WriteFile(settingsFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OS_AUTH_URL": ks.AuthURL, "OS_USERNAME": ks.Admin.Username, "OS_PASSWORD": ks.Admin.Password,
		"OS_PROJECT_NAME": ks.Admin.ProjectName, "OS_USER_DOMAIN_NAME": ks.Admin.UserDomainName,
		"OS_PROJECT_DOMAIN_NAME": ks.Admin.ProjectDomainName,
		"KAIZEN_SMTP_PASSWORD":   smtpSrv.Password(), "KAIZEN_SETPASS_SECRET_KEY": "0123456789abcdef0123456789abcdef-thirty-days",
	}
	cfg, err := config.Load(settingsFile, config.Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(ctx, cfg.Store.URL.Reveal(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	adminToken := func(context.Context) (string, error) { return ks.Identity.Token(), nil }
	spSrv.Start(t, ks, setpasstest.Options{
		Store: st, Logger: logger, Now: clock.Now,
		Branding: setpass.Branding{CloudName: cfg.Mail.CloudName, Support: cfg.Mail.Support},
		Settings: setpass.Settings{
			SecretKey: []byte(cfg.Setpass.SecretKey.Reveal()), BaseURL: cfg.Setpass.URL, TokenTTL: cfg.Setpass.TokenTTL.D,
			MaxAttempts: cfg.Setpass.MaxAttempts, MinPasswordLength: cfg.Setpass.MinPasswordLength,
			RateLimit: cfg.Setpass.RateLimit, RateBurst: cfg.Setpass.RateBurst,
		},
		Token: adminToken,
	})
	// addusers' client, which issues the first links.
	addusers := spSrv.Client
	sp := &lrSetpass{srv: spSrv.HTTP, client: addusers}

	// Keystone: three new users with a temporary password, whose links
	// addusers issues on days 7 and 12; two projects with a temporary quota
	// (ending on day 25, and on day 35 so that its 30-day warning falls in
	// the window) and their members.
	type newUser struct{ id, email, temp, pin string }
	mkUser := func(name, full, pin string) newUser {
		email := name + "@example.org"
		temp := "Temp-" + name + "-" + rand.Text()[:12]
		return newUser{lrUser(t, ks, domainID, email, full, temp), email, temp, pin}
	}
	ivy, gus, hal := mkUser("ivy", "Ivy Ives", "4821"), mkUser("gus", "Gus Grant", "1357"), mkUser("hal", "Hal Hart", "2468")
	member := func(name, full string) string {
		u, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: name + "@example.org", DomainID: domainID,
			Description: full, Extra: map[string]any{"email": name + "@example.org"}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	roleID, err := cloud.RoleID(ctx, ks.Identity, "member")
	if err != nil {
		t.Fatal(err)
	}
	project := func(name string, end time.Time, members ...string) {
		p, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: name, DomainID: domainID,
			Tags: []string{cloud.KaizenTag, cloud.QuotaEndTag(end)}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range members {
			if err := roles.Assign(ctx, ks.Identity, roleID, roles.AssignOpts{UserID: u, ProjectID: p.ID}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	project("qe-short", at(25, 0, 0), member("kim", "Kim Kent"), member("lou", "Lou Lane"))
	project("qe-long", at(35, 0, 0), member("max", "Max Moss"))

	// The daemon, built as cmd/reminders wires it, on the simulated clock.
	startDaemon := func(owner string) *simDaemon {
		t.Helper()
		sh, _, err := app.New(cfg, logger, app.Options{}).SignupSheet(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		simKeys, err := app.Keys(cfg, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		renderer, err := kmail.NewRenderer(templates.FS, cfg.Mail.TemplatesDir, kmail.CommonFromConfig(cfg.Mail))
		if err != nil {
			t.Fatal(err)
		}
		composer, err := kmail.NewComposer(cfg.Mail.From, cfg.Mail.Support, clock.Now, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		transport, err := kmail.NewTransport(cfg.Mail, clock.Now, rand.Reader, kmail.SMTPOptions{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		outbox := kmail.NewOutbox(st, renderer, composer, transport, kmail.OutboxOptions{
			MaxAttempts: cfg.Mail.MaxAttempts, Workers: cfg.Mail.SMTP.PoolSize, Now: clock.Now, Logger: logger,
			Keys: simKeys,
		})
		spClient, err := client.New(cfg.Setpass.URL, &http.Client{Timeout: 30 * time.Second}, adminToken)
		if err != nil {
			t.Fatal(err)
		}
		kusers := reminder.KeystoneUsers{Identity: cloud.NewKeystone(ks.Identity)}
		// Keystone is shared between tests: only this test's domain.
		kprojects := reminder.KeystoneProjects{Identity: cloud.NewKeystone(ks.Identity), DomainID: domainID}
		jobs, err := reminder.Build(ctx, cfg, reminder.BuildDeps{
			Store: st, Outbox: outbox, Sheet: sh, Setpass: spClient,
			Users: kusers, Passwords: kusers, Projects: kprojects, Members: kprojects,
			Logger: logger, Now: clock.Now, Random: rand.Reader,
		})
		if err != nil {
			t.Fatal(err)
		}
		entries, err := reminder.Entries(cfg, jobs)
		if err != nil {
			t.Fatal(err)
		}
		loc, err := reminder.Location(cfg.Reminders)
		if err != nil {
			t.Fatal(err)
		}
		runner := &reminder.Runner{Locks: st, Logger: logger, Now: clock.Now, Owner: owner}
		sched := reminder.NewScheduler(runner, loc, entries...)
		return &simDaemon{sched: sched, runner: runner, close: func() {
			sched.Abort()
			if c, ok := transport.(io.Closer); ok {
				c.Close()
			}
		}}
	}

	// Links: each user's newest link, checked as reminders arrive.
	links := map[string]string{}
	issue := func(u newUser) {
		t.Helper()
		iss, err := addusers.Issue(ctx, u.id, u.temp, u.pin)
		if err != nil {
			t.Fatal(err)
		}
		if want := clock.Now().Add(72 * time.Hour); !iss.ExpiresAt.Equal(want) {
			t.Errorf("%s's first link expires %s, want %s (setpass must run on the simulated clock)", u.email, iss.ExpiresAt, want)
		}
		links[u.email] = iss.URL
	}
	linkRE := regexp.MustCompile(regexp.QuoteMeta(spURL) + `\?token=[A-Za-z0-9_-]+`)
	seen, linkChecks := 0, 0
	checkLinks := func() {
		t.Helper()
		msgs := smtpSrv.Messages()
		for _, m := range msgs[seen:] {
			subject, _, _, text := simParse(t, m)
			if subject != "Reminder: set your Test Cloud password" {
				continue
			}
			to := strings.Join(m.To, ",")
			link := linkRE.FindString(text)
			prev := links[to]
			now := fmt.Sprintf("day %02d %s", dayOf(clock.Now()), clock.Now().In(ny).Format("15:04"))
			switch {
			case link == "":
				t.Errorf("%s: the reminder to %s carries no link:\n%s", now, to, text)
				continue
			case prev == "" || link == prev:
				t.Errorf("%s: the reminder to %s carries %q; the previous link was %q", now, to, link, prev)
			}
			if code := sp.get(t, prev); code != http.StatusGone {
				t.Errorf("%s: %s's previous link answers %d after the reminder, want 410", now, to, code)
			}
			if code := sp.get(t, link); code != http.StatusOK {
				t.Errorf("%s: the link of %s's reminder answers %d, want 200", now, to, code)
			}
			links[to] = link
			linkChecks++
		}
		seen = len(msgs)
	}

	// What happens between runs, in order. Events at a time happen after the
	// runs due then. Times are multiples of 10 minutes, so that the outbox
	// (@every 10m, which Simulate starts afresh at each stop) keeps running
	// on the hour.
	var d *simDaemon
	var runs []reminder.RunRecord // every run, in order
	type event struct {
		at time.Time
		do func()
	}
	events := []event{
		{at(2, 15, 0), func() { addRow(at(2, 15, 0), "Ben", "Baker") }}, // row 5
		{at(4, 12, 0), func() { setApproved(2, "yes") }},                // Ann
		{at(5, 11, 0), func() { addRow(at(5, 11, 0), "Cat", "Cole") }},  // row 6
		{at(6, 14, 10), func() { setApproved(6, "Approved") }},          // Cat, before any digest listed her
		{at(7, 10, 0), func() { issue(ivy); issue(gus) }},
		{at(10, 11, 20), func() { setApproved(5, "no") }}, // Ben is turned down
		{at(10, 12, 10), func() {
			// Ivy sets her password through her reminder's link, with
			// the PIN she chose at sign-up.
			const pw = "ivy's own long password"
			if code := sp.complete(t, links[ivy.email], ivy.pin, pw); code != http.StatusOK {
				t.Errorf("Ivy completing her reminder's link: %d", code)
			} else if !lrCanLogIn(t, ks, domainID, ivy.email, pw) {
				t.Error("Ivy cannot log in with the password she set")
			}
		}},
		{at(12, 10, 0), func() { issue(hal) }},
		{at(12, 16, 40), func() { addRow(at(12, 16, 40), "Dan", "Dunn") }}, // row 7
		// The mail server goes down before the day-15 digest...
		{at(15, 8, 50), func() { smtpSrv.SetDown(true) }},
		// ... and the daemon restarts while that digest waits in the
		// outbox: a new scheduler, runner, jobs, sheet client, outbox and
		// transport over the same store. The operator then runs every job
		// by hand (`reminders run`): nothing is sent twice.
		{restart, func() {
			d.close()
			smtpSrv.SetDown(false)
			d = startDaemon("daemon-2")
			for _, e := range d.sched.Entries() {
				rec := d.runner.Run(ctx, e, nil)
				runs = append(runs, rec)
				want := reminder.OutcomeOK
				if e.Name == "outbox" {
					// The old daemon's 09:30 run keeps the lock for 30 s, as
					// against a replica whose clock lags.
					want = reminder.OutcomeSkipped
				}
				if rec.Outcome != want || rec.Result.Sent != 0 {
					t.Errorf("manual run of %s right after the restart: %s, %+v, %v; want %s and nothing sent",
						e.Name, rec.Outcome, rec.Result, rec.Err, want)
				}
			}
		}},
		{at(17, 10, 30), func() { setApproved(7, "yes") }},             // Dan
		{at(20, 8, 0), func() { addRow(at(20, 8, 0), "Eli", "Ertl") }}, // row 8
		{at(22, 16, 20), func() { setApproved(8, "TRUE") }},            // Eli
	}
	for day := range 30 {
		events = append(events, event{at(day, 10, 10), checkLinks})
	}
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })

	d = startDaemon("daemon-1")
	cur := start
	simulate := func(to time.Time) {
		t.Helper()
		log, err := d.sched.Simulate(ctx, clock, cur, to)
		runs = append(runs, log...)
		if err != nil {
			t.Fatalf("simulating to %s: %v", to, err)
		}
		cur = to
		clock.Set(to)
	}
	for _, ev := range events {
		simulate(ev.at)
		ev.do()
	}
	simulate(end)
	d.close()
	simulated := time.Since(began)

	// Every run succeeded (only the manual outbox run was skipped).
	perJob := map[string]int{}
	for _, r := range runs {
		perJob[r.Job]++
		if r.Outcome == reminder.OutcomeError || r.Outcome == reminder.OutcomeSkipped && !(r.Job == "outbox" && r.At.Equal(restart)) {
			t.Errorf("%s run at %s: %s: %v", r.Job, r.At.In(ny).Format(time.DateTime), r.Outcome, r.Err)
		}
	}
	// 30 daily runs each; the 30 days are 719 hours (DST), so 719 hourly
	// runs and 4314 every 10 minutes; plus one manual run each.
	if want := map[string]int{"approver-digest": 31, "helpdesk-notify": 720, "link-reminder": 31, "quota-expiry": 31, "outbox": 4315}; !maps.Equal(perJob, want) {
		t.Errorf("runs per job: %v, want %v", perJob, want)
	}

	// What arrived, when. The outbox runs' Sent counts, in order, date the
	// messages in arrival order.
	msgs := smtpSrv.Messages()
	var deliveredAt []time.Time
	for _, r := range runs {
		if r.Job == "outbox" {
			for range r.Result.Sent {
				deliveredAt = append(deliveredAt, r.At)
			}
		}
	}
	if len(deliveredAt) != len(msgs) {
		t.Fatalf("the outbox runs delivered %d messages; the SMTP server received %d", len(deliveredAt), len(msgs))
	}
	stored, err := st.Messages(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A delivered message keeps no body, so a received one is matched to
	// its outbox record by recipient and queue time (the Date header, to
	// the second); records that tie must be of one kind.
	type arrival struct {
		to   string
		date int64
	}
	records := map[arrival][]store.Message{}
	for _, m := range stored {
		if m.Status != store.StatusSent {
			t.Errorf("outbox message %s is %s after the simulation (attempts %d, last error %q)", m.Key, m.Status, m.Attempts, m.LastError)
		}
		if len(m.Body) != 0 {
			t.Errorf("outbox message %s keeps its body after delivery", m.Key)
		}
		a := arrival{strings.Join(m.To, ","), m.CreatedAt.Unix()}
		records[a] = append(records[a], m)
	}
	if len(stored) != len(msgs) {
		t.Errorf("%d messages in the outbox, %d received", len(stored), len(msgs))
	}
	var got []simMail
	for i, m := range msgs {
		if !m.TLS || m.AuthUser != smtpSrv.Username() || len(m.To) != 1 {
			t.Errorf("message %d: TLS %v, AUTH %q, to %v", i, m.TLS, m.AuthUser, m.To)
		}
		subject, date, _, text := simParse(t, m)
		a := arrival{strings.Join(m.To, ","), date.Unix()}
		cands := records[a]
		if len(cands) == 0 {
			t.Errorf("message %d (%s) is not in the outbox, or arrived twice", i, subject)
			continue
		}
		for _, c := range cands[1:] {
			if c.Kind != cands[0].Kind {
				t.Fatalf("messages %s and %s to %s queued in the same second: cannot tell them apart", c.Key, cands[0].Key, a.to)
			}
		}
		sm := cands[0]
		records[a] = cands[1:]
		got = append(got, simMail{at: deliveredAt[i], date: date, to: strings.Join(m.To, ","), kind: sm.Kind, subject: subject, text: text})
	}

	// The digests list their rows' addresses.
	rowRE := regexp.MustCompile(`(?m)^\d+\. .* <([^>]+)>\r?$`)
	line := func(m simMail) string {
		s := fmt.Sprintf("day %02d %s %s to %s: %s", dayOf(m.at), m.at.In(ny).Format("15:04"), m.kind, m.to, m.subject)
		if !m.date.Equal(m.at) {
			s += fmt.Sprintf(" (queued day %02d %s)", dayOf(m.date), m.date.In(ny).Format("15:04"))
		}
		if m.kind == kmail.KindApproverDigest {
			var rows []string
			for _, sub := range rowRE.FindAllStringSubmatch(m.text, -1) {
				rows = append(rows, sub[1])
			}
			s += " [" + strings.Join(rows, " ") + "]"
		}
		return s
	}
	var gotLines []string
	for _, m := range got {
		gotLines = append(gotLines, line(m))
	}

	var want []string
	// expect adds a mail delivered (and queued) at day/hour:minute; the
	// caller may append to the line it returns, before the next expect.
	expect := func(day, hour, minute int, kind, to, subject string) *string {
		want = append(want, fmt.Sprintf("day %02d %02d:%02d %s to %s: %s", day, hour, minute, kind, to, subject))
		return &want[len(want)-1]
	}
	digestAt := func(day, hour, minute int, rows ...string) *string {
		subject := fmt.Sprintf("Test Cloud: %d sign-up request waiting for approval", len(rows))
		if len(rows) > 1 {
			subject = fmt.Sprintf("Test Cloud: %d sign-up requests waiting for approval", len(rows))
		}
		return expect(day, hour, minute, kmail.KindApproverDigest, "approvers@example.org", subject)
	}
	digest := func(day int, rows ...string) {
		*digestAt(day, 9, 0, rows...) += " [" + strings.Join(rows, " ") + "]"
	}
	const (
		ann = "ann@example.org"
		ben = "ben@example.org"
		dan = "dan@example.org"
		eli = "eli@example.org"
	)
	// Approver digests at 09:00: a row at least 24 h old without a
	// decision. Ann drops out once approved (day 4), Ben once turned down
	// (day 10); Cat is approved before she is 24 h old; none on days 11-13
	// and 18-20. Day 6's digest comes 23 h after day 5's (DST) and still
	// lists Ben.
	for day := range 4 {
		digest(day, ann)
	}
	digest(4, ann, ben)
	for day := 5; day <= 10; day++ {
		digest(day, ben)
	}
	digest(14, dan)
	// Day 15's digest, queued at 09:00 while the mail server was down, is
	// delivered by the restarted daemon.
	*digestAt(15, 9, 40, dan) += " (queued day 15 09:00) [" + dan + "]"
	digest(16, dan)
	digest(17, dan)
	digest(21, eli)
	digest(22, eli)

	// Helpdesk notices: one per newly approved row, at the next hour.
	const helpdesk = "helpdesk@example.org"
	notice := func(day, hour int, who string) {
		expect(day, hour, 0, kmail.KindHelpdeskNotify, helpdesk, "Test Cloud: New approved sign-up: "+who)
	}
	notice(4, 13, "Ann Archer <ann@example.org> (proj-ann)")
	notice(6, 15, "Cat Cole <cat@example.org> (proj-cat)")
	notice(17, 11, "Dan Dunn <dan@example.org> (proj-dan)")
	notice(22, 17, "Eli Ertl <eli@example.org> (proj-eli)")

	// Link reminders 48, 96 and 144 h after the first link, each with a new
	// link; the helpdesk after 7 days. Ivy set her password after her
	// first reminder. Hal's reminders straddle the restart.
	const reminderSubject = "Reminder: set your Test Cloud password"
	expect(9, 10, 0, kmail.KindLinkReminder, ivy.email, reminderSubject)
	for _, day := range []int{9, 11, 13} {
		expect(day, 10, 0, kmail.KindLinkReminder, gus.email, reminderSubject)
	}
	expect(14, 10, 0, kmail.KindHelpdeskNotify, helpdesk, "Test Cloud: gus@example.org has not set a password since 2026-03-09")
	for _, day := range []int{14, 16, 18} {
		expect(day, 10, 0, kmail.KindLinkReminder, hal.email, reminderSubject)
	}
	expect(19, 10, 0, kmail.KindHelpdeskNotify, helpdesk, "Test Cloud: hal@example.org has not set a password since 2026-03-14")

	// Quota expiry at 08:00. qe-short ends on day 25 (2026-03-27): on day 0
	// its 30-day warning is due (25 days left), then 7 and 1 days before,
	// and the helpdesk the day after the end. qe-long ends on day 35: its
	// 30-day warning on day 5, the 7-day one on day 28.
	for _, to := range []string{"kim@example.org", "lou@example.org"} {
		expect(0, 8, 0, kmail.KindQuotaExpiry, to, "qe-short on Test Cloud ends in 25 days")
		expect(18, 8, 0, kmail.KindQuotaExpiry, to, "qe-short on Test Cloud ends in 7 days")
		expect(24, 8, 0, kmail.KindQuotaExpiry, to, "qe-short on Test Cloud ends in 1 day")
	}
	expect(26, 8, 0, kmail.KindHelpdeskNotify, helpdesk, "Test Cloud: the temporary quota of qe-short ended on 2026-03-27")
	expect(5, 8, 0, kmail.KindQuotaExpiry, "max@example.org", "qe-long on Test Cloud ends in 30 days")
	expect(28, 8, 0, kmail.KindQuotaExpiry, "max@example.org", "qe-long on Test Cloud ends in 7 days")

	slices.Sort(gotLines)
	slices.Sort(want)
	if !slices.Equal(gotLines, want) {
		for _, l := range gotLines {
			if !slices.Contains(want, l) {
				t.Errorf("unexpected: %s", l)
			}
		}
		for _, l := range want {
			if !slices.Contains(gotLines, l) {
				t.Errorf("missing:    %s", l)
			}
		}
		t.Errorf("got %d mails, want %d", len(gotLines), len(want))
	}

	// No duplicate by recipient, kind, subject and day.
	count := map[string]int{}
	for _, m := range got {
		count[fmt.Sprintf("%s|%s|%s|%d", m.to, m.kind, m.subject, dayOf(m.at))]++
	}
	for k, n := range count {
		if n > 1 {
			t.Errorf("sent %d times: %s", n, k)
		}
	}

	// Seven reminders, each with a new link that worked when it arrived
	// and killed the one before.
	if linkChecks != 7 {
		t.Errorf("checked the links of %d reminders, want 7", linkChecks)
	}
	// The day-15 digest failed four times while the server was down.
	if i := slices.IndexFunc(stored, func(m store.Message) bool {
		return m.Kind == kmail.KindApproverDigest && dayOf(m.CreatedAt) == 15
	}); i < 0 {
		t.Error("no day-15 digest in the outbox")
	} else if stored[i].Attempts != 5 {
		t.Errorf("the day-15 digest took %d attempts, want 5 (4 failures on the simulated backoff, then delivery)", stored[i].Attempts)
	}
	// The sheet jobs stamped their rows with the run's time.
	for cell, want := range map[string]string{
		"I2": stamp(at(4, 9, 0)), "J2": stamp(at(4, 13, 0)), // Ann
		"I5": stamp(at(10, 9, 0)), "J5": "", // Ben
		"I6": "", "J6": stamp(at(6, 15, 0)), // Cat
		"I7": stamp(at(17, 9, 0)), "J7": stamp(at(17, 11, 0)), // Dan
		"J3": "", "J4": stamp(at(-4, 10, 0)), // Eve, Fay: untouched
	} {
		if v, _ := fake.Cell(simBook, simTab, cell); v != want {
			t.Errorf("cell %s = %q, want %q", cell, v, want)
		}
	}
	var outboxTime time.Duration
	for _, r := range runs {
		if r.Job == "outbox" {
			outboxTime += r.Duration
		}
	}
	t.Logf("30 simulated days: %d runs (the outbox's took %s), %d mails, in %s",
		len(runs), outboxTime.Round(time.Millisecond), len(msgs), simulated.Round(time.Millisecond))
}

// simParse reads a received message's Subject, Date, Message-ID and text
// part.
func simParse(t *testing.T, m testenv.ReceivedMessage) (subject string, date time.Time, msgID, text string) {
	t.Helper()
	msg, err := m.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if date, err = msg.Header.Date(); err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			text = string(b)
		}
	}
	return subject, date, msg.Header.Get("Message-Id"), text
}
