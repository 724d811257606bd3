package reminder

import (
	"context"
	"errors"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
)

type noQuotas struct{}

func (noQuotas) Apply(context.Context, string, cloud.QuotaSet) ([]string, error) { return nil, nil }

type noIssuer struct{}

func (noIssuer) Issue(context.Context, string, string, string) (client.Issued, error) {
	return client.Issued{}, errors.New("not in this test")
}

type noMail struct{}

func (noMail) Queue(context.Context, string, string, []netmail.Address, any) (int64, bool, error) {
	return 0, false, errors.New("not in this test")
}

const csvHeader = "Timestamp,Email,First Name,Last Name,Organization,Role,Phone,Sponsor,PIN,Comment,Existing Account,Project Name,Project Description,Additional Users,Existing Project,Quota Preset,Domain,Approved,Status,Processed At,User ID,Project ID\n"

// The import job wired with injected deps. Rows here never reach the cloud
// (invalid or not approved), so no Keystone is needed; onboard's own tests
// cover imports against a real one.
func TestImportJob(t *testing.T) {
	st := openSQLite(t)
	ctx := context.Background()
	cfg := config.Defaults()
	reqOpts, err := signup.OptionsFromConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "requests.csv")
	write := func(rows string) {
		if err := os.WriteFile(path, []byte(csvHeader+rows), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var opened []bool
	open := func(ctx context.Context, dry bool) (*onboard.Setup, error) {
		opened = append(opened, dry)
		return &onboard.Setup{
			Deps: onboard.Deps{Identity: cloud.NewKeystone(&gophercloud.ServiceClient{}), Sheet: sheet.NewCSV(path), Store: st,
				Quotas: noQuotas{}, Setpass: noIssuer{}, Mail: noMail{}},
			Options: onboard.Options{Request: reqOpts, Source: "csv:" + path, Roles: []string{"member"}},
		}, nil
	}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	job, err := NewImport(config.Job{Name: "import", Kind: "import"}, ImportDeps{Open: open, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}

	// Nothing approved: an ok run that did nothing.
	write("11/16/2026 09:14:03,ada@example.org,Ada,Lovelace,Org,Prof,,Babbage,4821,,No,engine,Sims,,No,,,FALSE,,,,\n")
	res, err := job.Run(ctx, RunContext{Now: now})
	if err != nil || res.Sent != 0 || len(res.Lines) != 1 || !strings.Contains(res.Lines[0], "0 failed; 1 not approved") {
		t.Fatalf("not approved: %+v, %v", res, err)
	}

	// An approved but invalid row fails the run (retried at the next).
	write("11/16/2026 09:14:03,not-an-address,Ada,Lovelace,Org,Prof,,Babbage,4821,,No,engine,Sims,,No,,,TRUE,,,,\n")
	res, err = job.Run(ctx, RunContext{Now: now})
	if err == nil || !strings.Contains(err.Error(), "1 of 1 rows failed") {
		t.Fatalf("invalid row: err = %v", err)
	}
	if len(res.Lines) != 2 || !strings.HasPrefix(res.Lines[0], "row 2 failed: not-an-address engine:") {
		t.Errorf("lines %q", res.Lines)
	}
	// The outcome is written back, stamped with the job's clock.
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"error: Email: ""not-an-address"" is not an email address",2026-03-02T09:00:00Z`) {
		t.Errorf("outcome not written back (lines %q):\n%s", res.Lines, b)
	}

	// An addusers run holding the sheet's lock: skipped, not failed.
	if err := st.AcquireLock(ctx, "addusers:csv:"+path, "addusers/elsewhere", now, time.Hour); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Locks: st, Now: func() time.Time { return now }}
	if rec := r.Run(ctx, Entry{Name: "import", Job: job}, nil); rec.Outcome != OutcomeSkipped || !errors.Is(rec.Err, onboard.ErrLocked) {
		t.Errorf("locked sheet: %+v", rec)
	}

	// A dry run wires a dry setup.
	r.DryRun = true
	r.Run(ctx, Entry{Name: "import", Job: job}, nil)
	if !opened[len(opened)-1] {
		t.Error("a dry run opened a non-dry setup")
	}

	// Wiring that fails (cloud down) fails the run.
	broken, _ := NewImport(config.Job{Name: "import"}, ImportDeps{Open: func(context.Context, bool) (*onboard.Setup, error) {
		return nil, errors.New("authenticating to OpenStack: connection refused")
	}})
	if _, err := broken.Run(ctx, RunContext{Now: now}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("broken wiring: %v", err)
	}
}
