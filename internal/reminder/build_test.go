package reminder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/drift"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
)

func TestBuildAllKinds(t *testing.T) {
	st := openSQLite(t)
	csv := filepath.Join(t.TempDir(), "requests.csv")
	if err := os.WriteFile(csv, []byte(csvHeader), 0o600); err != nil {
		t.Fatal(err)
	}
	var connects atomic.Int32
	lazy := NewLazyCloud(func(context.Context) (*cloud.Clients, error) {
		connects.Add(1)
		return nil, errors.New("keystone down")
	})
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	deps := BuildDeps{
		Store: st, Outbox: mail.NewOutbox(st, nil, nil, nil, mail.OutboxOptions{Keys: mailtest.Keys(t)}), Sheet: sheet.NewCSV(csv),
		Setpass: noIssuer{}, Users: lazy, Passwords: lazy, Projects: lazy, Members: lazy,
		Now: func() time.Time { return now },
		// Wired by internal/app in the programs; building must not call them.
		ImportOpen: func(context.Context, bool) (*onboard.Setup, error) {
			return nil, errors.New("import wired at build")
		},
		ValidateOpen: func(context.Context, bool) (*drift.Setup, error) {
			return nil, errors.New("validate wired at build")
		},
	}
	cfg := config.Defaults()
	cfg.Reminders.Jobs = []config.Job{
		{Name: "digest", Kind: "approver-digest", Schedule: "@daily", To: []string{"approvers@example.org"}},
		{Name: "notify", Kind: "helpdesk-notify", Schedule: "@hourly"},
		{Name: "import", Kind: "import", Schedule: "@hourly"},
		{Name: "links", Kind: "link-reminder", Schedule: "0 10 * * *"},
		{Name: "quotas", Kind: "quota-expiry", Schedule: "@daily"},
		{Name: "outbox", Kind: "outbox", Schedule: "@every 1m"},
		{Name: "validate", Kind: "validate", Schedule: "@daily", Apply: true},
		{Name: "off", Kind: "outbox", Schedule: "@every 1m", Disabled: true},
	}
	jobs, err := Build(context.Background(), &cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range jobs {
		names = append(names, n)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "digest,import,links,notify,outbox,quotas,validate" {
		t.Fatalf("built %v", names)
	}
	if connects.Load() != 0 {
		t.Error("building connected to OpenStack; it should connect at the first run that needs it")
	}

	// Keystone down fails the run that needs it, and is tried again at
	// the next run.
	for i := 1; i <= 2; i++ {
		if _, err := jobs["quotas"].Run(context.Background(), RunContext{Now: now}); err == nil || !strings.Contains(err.Error(), "keystone down") {
			t.Fatalf("quota-expiry with Keystone down: %v", err)
		}
		if connects.Load() != int32(i) {
			t.Errorf("%d connection attempts after %d runs", connects.Load(), i)
		}
	}

	// A job that cannot be built is a configuration error naming it.
	noSheet := deps
	noSheet.Sheet = nil
	_, err = Build(context.Background(), &cfg, noSheet)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), `reminders.job "digest" (approver-digest): needs the sign-up sheet`) ||
		!strings.Contains(err.Error(), `reminders.job "notify"`) {
		t.Errorf("no sheet: %v", err)
	}
	_, err = BuildJob(context.Background(), &cfg, config.Job{Name: "x", Kind: "carrier-pigeon"}, deps)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), `unknown kind "carrier-pigeon"`) {
		t.Errorf("unknown kind: %v", err)
	}
	_, err = BuildJob(context.Background(), &cfg, config.Job{Name: "d", Kind: "approver-digest"}, deps)
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("approver-digest without to: %v", err)
	}
}
