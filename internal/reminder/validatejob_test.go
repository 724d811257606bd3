package reminder_test

import (
	"context"
	"log/slog"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/drift"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// vjMailer records what the job queues.
type vjMailer struct {
	mu   sync.Mutex
	sent []vjMail
}

type vjMail struct {
	key, kind string
	to        []netmail.Address
	data      kmail.HelpdeskNotifyData
}

func (m *vjMailer) Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, _ := data.(kmail.HelpdeskNotifyData)
	m.sent = append(m.sent, vjMail{key, kind, to, d})
	return int64(len(m.sent)), true, nil
}

func (m *vjMailer) all() []vjMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]vjMail(nil), m.sent...)
}

// TestValidateJob runs the validate job against the real Keystone: no
// mail without drift; one helpdesk notice when a role is removed behind
// the tool's back, not repeated the same day, repeated the next; with
// apply the drift is repaired and reported as such.
func TestValidateJob(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	ctx := t.Context()
	domainID, domain := ks.Domain(t)
	p, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: "engines", DomainID: domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	u, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: "ada@example.org", DomainID: domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	memberID, err := cloud.RoleID(ctx, ks.Identity, "member")
	if err != nil {
		t.Fatal(err)
	}
	if err := roles.Assign(ctx, ks.Identity, memberID, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	// A processed row joining the project (no quotas of its own to check).
	c := config.DefaultSheetColumns()
	path := filepath.Join(t.TempDir(), "signups.csv")
	csv := strings.Join([]string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.PIN, c.ProjectName, c.ExistingProject,
		c.Approved, c.Status, c.ProcessedAt, c.UserID, c.ProjectID}, ",") + "\n" +
		"3/14/2026 14:05:09,ada@example.org,Ada,Lovelace,(registered),engines,yes,yes,done,2026-03-14T15:00:00Z," + u.ID + "," + p.ID + "\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "kaizen.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mailer := &vjMailer{}
	var applied []bool
	open := func(ctx context.Context, apply bool) (*drift.Setup, error) {
		applied = append(applied, apply)
		return &drift.Setup{
			Deps: drift.Deps{Identity: cloud.NewKeystone(ks.Identity), Sheet: sheet.NewCSV(path), Store: st},
			Options: drift.Options{Request: signup.Options{DefaultDomain: domain}, Apply: apply, Actor: "test",
				Source: "csv:" + path},
		}, nil
	}
	build := func(apply bool) reminder.Job {
		j, err := reminder.NewValidate(config.Job{Name: "validate", Kind: "validate", Apply: apply},
			reminder.ValidateDeps{Open: open, Ledger: st, Mail: mailer, Helpdesk: "helpdesk@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	job := build(false)
	day := time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)
	run := func(j reminder.Job, at time.Time, dry bool) reminder.Result {
		t.Helper()
		res, err := j.Run(ctx, reminder.RunContext{Now: at, DryRun: dry})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return res
	}

	if res := run(job, day, false); res.Sent != 0 || len(mailer.all()) != 0 || !strings.HasPrefix(res.Lines[0], "no drift") {
		t.Fatalf("without drift: %+v, mail %v", res, mailer.all())
	}

	if err := roles.Unassign(ctx, ks.Identity, memberID, roles.UnassignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if res := run(job, day, true); res.Sent != 1 || len(mailer.all()) != 0 {
		t.Errorf("dry run: %+v, mail %v", res, mailer.all())
	}
	res := run(job, day, false)
	ms := mailer.all()
	if res.Sent != 1 || len(ms) != 1 || ms[0].kind != kmail.KindHelpdeskNotify || ms[0].to[0].Address != "helpdesk@example.org" {
		t.Fatalf("with drift: %+v, mail %+v", res, ms)
	}
	if d := ms[0].data; !strings.Contains(d.Summary, "1 difference(s), 1 not repaired") || len(d.Items) != 1 ||
		!strings.Contains(d.Items[0].Problem, "does not hold role member") || d.Items[0].Project != "engines" {
		t.Errorf("notice = %+v", d)
	}
	if res := run(job, day.Add(3*time.Hour), false); res.Sent != 0 || res.Skipped != 1 || len(mailer.all()) != 1 {
		t.Errorf("same drift, same day: %+v", res)
	}
	if res := run(job, day.AddDate(0, 0, 1), false); res.Sent != 1 || len(mailer.all()) != 2 {
		t.Errorf("same drift, next day: %+v", res)
	}

	// With apply the job repairs, and says so; afterwards it is quiet.
	fixer := build(true)
	if res := run(fixer, day.AddDate(0, 0, 2), false); res.Sent != 1 {
		t.Fatalf("apply: %+v", res)
	}
	ms = mailer.all()
	if d := ms[len(ms)-1].data; !strings.Contains(d.Summary, "0 not repaired") || !strings.Contains(d.Items[0].Problem, "(repaired)") {
		t.Errorf("apply notice = %+v", d)
	}
	if has, err := cloud.HasProjectRole(ctx, ks.Identity, u.ID, p.ID, memberID); err != nil || !has {
		t.Errorf("role after the job repaired it: %v %v", has, err)
	}
	if res := run(fixer, day.AddDate(0, 0, 2).Add(time.Hour), false); res.Sent != 0 || len(mailer.all()) != len(ms) {
		t.Errorf("after the repair: %+v", res)
	}
	// Never repairs in a dry run.
	if applied[1] || !applied[len(applied)-1] {
		t.Errorf("apply per run = %v", applied)
	}
}
