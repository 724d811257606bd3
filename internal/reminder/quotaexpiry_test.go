package reminder_test

import (
	"context"
	"fmt"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestQuotaExpiryKeystone simulates 50 days against the real Keystone:
// warnings at 30, 7 and 1 days to every member (direct and through a
// group), once each across a restart; only the nearest of missed
// thresholds; one helpdesk notice after the end.
func TestQuotaExpiryKeystone(t *testing.T) {
	ks := testenv.Keystone(t)
	ctx := t.Context()
	domainID, _ := ks.Domain(t)
	st := lrOpenStore(t)
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	clock := &lrClock{now: start}
	mailer := &lrMailer{next: lrOutbox(t, st, clock.Now)}

	roleID, err := cloud.RoleID(ctx, ks.Identity, "member")
	if err != nil {
		t.Fatal(err)
	}
	newProject := func(name string, tags ...string) string {
		p, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: name, DomainID: domainID, Tags: tags}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	newUser := func(name string, extra map[string]any, enabled bool) string {
		u, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: name, DomainID: domainID, Enabled: &enabled,
			Description: "Full " + name, Extra: extra}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	assign := func(userID, projectID string) {
		if err := roles.Assign(ctx, ks.Identity, roleID, roles.AssignOpts{UserID: userID, ProjectID: projectID}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}

	end1 := start.AddDate(0, 0, 40) // warnings at days 10, 33 and 39; ended on day 41
	end2 := start.AddDate(0, 0, 5)  // 30 and 7 both missed by day 0: only the 7-day one
	p1 := newProject("long", cloud.KaizenTag, cloud.QuotaEndTag(end1))
	p2 := newProject("short", cloud.KaizenTag, "requested-2026-01-01", cloud.QuotaEndTag(end2))
	newProject("no-end", cloud.KaizenTag)
	newProject("not-kaizen", cloud.QuotaEndTag(end2))

	alice := newUser("alice@example.org", map[string]any{"email": "alice@example.org"}, true)
	bob := newUser("bob", map[string]any{"email": "bob@example.org"}, true)
	carol := newUser("carol@example.org", map[string]any{"email": "carol@example.org"}, false) // disabled
	assign(alice, p1)
	assign(alice, p2)
	assign(carol, p1)
	g, err := groups.Create(ctx, ks.Identity, groups.CreateOpts{Name: "team", DomainID: domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := users.AddToGroup(ctx, ks.Identity, g.ID, bob).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := roles.Assign(ctx, ks.Identity, roleID, roles.AssignOpts{GroupID: g.ID, ProjectID: p1}).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// Keystone is shared: only this test's domain.
	kp := reminder.KeystoneProjects{Identity: cloud.NewKeystone(ks.Identity), DomainID: domainID}
	newJob := func() reminder.Job {
		j, err := reminder.NewQuotaExpiry(config.Job{Name: "quota-expiry", Kind: "quota-expiry"}, reminder.QuotaExpiryDeps{
			Projects: kp, Members: kp, Users: reminder.KeystoneUsers{Identity: cloud.NewKeystone(ks.Identity)},
			Ledger: st, Mail: mailer, Helpdesk: "helpdesk@example.org",
		})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	job := newJob()

	// A dry run on day 0 says what it would send and records nothing.
	res := lrRun(t, job, start, true)
	if res.Sent != 1 || !strings.Contains(res.Lines[0], "would warn alice@example.org: short ends 2026-06-06 (5 days left, 7-day warning)") {
		t.Fatalf("dry run: %+v", res)
	}
	if len(mailer.take()) != 0 {
		t.Fatal("dry run queued mail")
	}

	var got []string
	for day := 0; day <= 50; day++ {
		if day == 20 {
			job = newJob() // a restart
		}
		for _, hour := range []int{0, 9, 23} { // several runs a day
			at := time.Date(2026, 6, 1, hour, 30, 0, 0, time.UTC).AddDate(0, 0, day)
			clock.Set(at)
			lrRun(t, job, at, false)
			for _, m := range mailer.take() {
				switch d := m.Data.(type) {
				case kmail.QuotaExpiryData:
					got = append(got, fmt.Sprintf("day %d %s %s %s %d left", day, m.To[0], d.Name, d.Project, d.DaysLeft))
				case kmail.HelpdeskNotifyData:
					got = append(got, fmt.Sprintf("day %d %s %s", day, m.To[0], d.Summary))
				default:
					t.Fatalf("queued %s %T", m.Kind, m.Data)
				}
			}
		}
	}
	want := []string{
		"day 0 alice@example.org Full alice@example.org short 5 left",
		"day 4 alice@example.org Full alice@example.org short 1 left",
		"day 6 helpdesk@example.org the temporary quota of short ended on 2026-06-06",
		"day 10 alice@example.org Full alice@example.org long 30 left",
		"day 10 bob@example.org Full bob long 30 left",
		"day 33 alice@example.org Full alice@example.org long 7 left",
		"day 33 bob@example.org Full bob long 7 left",
		"day 39 alice@example.org Full alice@example.org long 1 left",
		"day 39 bob@example.org Full bob long 1 left",
		"day 41 helpdesk@example.org the temporary quota of long ended on 2026-07-11",
	}
	if !slices.Equal(got, want) {
		t.Errorf("mail over 50 days:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n, err := st.OutboxCounts(ctx); err != nil || n[store.StatusPending] != len(want) {
		t.Errorf("outbox holds %v (%v), want %d pending", n, err, len(want))
	}
}

// TestQuotaExpiryLocation: days begin at midnight in the configured zone.
func TestQuotaExpiryLocation(t *testing.T) {
	st := lrOpenStore(t)
	mailer := &lrMailer{next: lrOutbox(t, st, time.Now)}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded (internal/config)
	}
	f := &qeFakes{projects: []cloud.Project{{ID: "p1", Name: "p1", Enabled: true, Tags: []string{"kaizen", "quota-ends-2026-06-08"}}},
		members: map[string][]string{"p1": {"u1"}}}
	job, err := reminder.NewQuotaExpiry(config.Job{Name: "qe", DaysBefore: []int{7, 7, 0}}, reminder.QuotaExpiryDeps{
		Projects: f, Members: f, Users: f, Ledger: st, Mail: mailer, Helpdesk: "helpdesk@example.org", Location: ny,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 2026-06-01 02:00 UTC is still May 31 in New York: 8 days left.
	if res := lrRun(t, job, time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC), false); res.Sent != 0 {
		t.Fatalf("8 days left in New York: %+v", res)
	}
	if res := lrRun(t, job, time.Date(2026, 6, 1, 4, 0, 0, 0, time.UTC), false); res.Sent != 1 {
		t.Fatalf("7 days left in New York: %+v", res)
	}
	// The end day itself, with days_before 0: "ends today".
	if res := lrRun(t, job, time.Date(2026, 6, 8, 12, 0, 0, 0, time.UTC), false); res.Sent != 1 {
		t.Fatalf("end day: %+v", res)
	}
	msgs := mailer.take()
	if len(msgs) != 2 || msgs[1].Data.(kmail.QuotaExpiryData).DaysLeft != 0 {
		t.Fatalf("queued %+v", msgs)
	}
	// Midnight in New York ends it.
	if res := lrRun(t, job, time.Date(2026, 6, 9, 3, 59, 0, 0, time.UTC), false); res.Sent != 0 {
		t.Fatalf("before midnight in New York: %+v", res)
	}
	if res := lrRun(t, job, time.Date(2026, 6, 9, 4, 0, 0, 0, time.UTC), false); res.Sent != 1 {
		t.Fatalf("after midnight in New York: %+v", res)
	}
	if m := mailer.take(); len(m) != 1 || m[0].Kind != kmail.KindHelpdeskNotify {
		t.Fatalf("queued %v", lrKinds(m))
	}
}

// TestQuotaExpiryRetry: a failed queue forgets the key; members already
// queued are not mailed twice.
func TestQuotaExpiryRetry(t *testing.T) {
	st := lrOpenStore(t)
	base := lrOutbox(t, st, time.Now)
	fm := &qeFlakyMailer{next: base, failOn: "u2@example.org"}
	f := &qeFakes{projects: []cloud.Project{{ID: "p1", Name: "p1", Enabled: true, Tags: []string{"kaizen", "quota-ends-2026-06-08"}}},
		members: map[string][]string{"p1": {"u1", "u2"}}}
	job, err := reminder.NewQuotaExpiry(config.Job{Name: "qe"}, reminder.QuotaExpiryDeps{
		Projects: f, Members: f, Users: f, Ledger: st, Mail: fm, Helpdesk: "helpdesk@example.org",
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 6, 2, 9, 0, 0, 0, time.UTC)
	if res, err := job.Run(t.Context(), reminder.RunContext{Now: at}); err == nil || res.Sent != 1 {
		t.Fatalf("with u2's mail failing: %+v %v", res, err)
	}
	fm.failOn = ""
	if res := lrRun(t, job, at.Add(time.Hour), false); res.Sent != 1 || !strings.Contains(res.Lines[0], "u2@example.org") {
		t.Fatalf("retry: %+v", res)
	}
	if res := lrRun(t, job, at.Add(2*time.Hour), false); res.Sent != 0 {
		t.Fatalf("after the retry: %+v", res)
	}
	if n, _ := st.OutboxCounts(t.Context()); n[store.StatusPending] != 2 {
		t.Errorf("outbox: %v", n)
	}
}

func TestQuotaExpiryConfig(t *testing.T) {
	f := &qeFakes{}
	st := lrOpenStore(t)
	deps := reminder.QuotaExpiryDeps{Projects: f, Members: f, Users: f, Ledger: st, Mail: &lrMailer{}}
	if _, err := reminder.NewQuotaExpiry(config.Job{Name: "qe"}, deps); err == nil {
		t.Error("no helpdesk accepted")
	}
	deps.Helpdesk = "helpdesk@example.org"
	if _, err := reminder.NewQuotaExpiry(config.Job{Name: "qe", DaysBefore: []int{-1}}, deps); err == nil {
		t.Error("negative days_before accepted")
	}
	deps.Members = nil
	if _, err := reminder.NewQuotaExpiry(config.Job{Name: "qe"}, deps); err == nil {
		t.Error("missing Members accepted")
	}
}

type qeFakes struct {
	projects []cloud.Project
	members  map[string][]string
}

func (f *qeFakes) TaggedProjects(ctx context.Context, tag string) ([]cloud.Project, error) {
	return slices.Clone(f.projects), nil
}

func (f *qeFakes) ProjectMembers(ctx context.Context, id string) ([]string, error) {
	return f.members[id], nil
}

func (f *qeFakes) User(ctx context.Context, id string) (reminder.UserInfo, error) {
	return reminder.UserInfo{ID: id, Name: id, Email: id + "@example.org", Enabled: true}, nil
}

type qeFlakyMailer struct {
	next   reminder.Mailer
	failOn string
}

func (m *qeFlakyMailer) Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (int64, bool, error) {
	if m.failOn != "" && to[0].Address == m.failOn {
		return 0, false, fmt.Errorf("queue refused for %s", m.failOn)
	}
	return m.next.Queue(ctx, key, kind, to, data)
}
