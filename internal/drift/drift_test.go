package drift_test

// Integration test of drift.Check against the real Keystone and quota
// services: rows imported by onboard.Run (with stand-ins for setpass and
// mail, which validation does not look at), then drift made behind the
// tool's back, reported, repaired and gone.

import (
	"context"
	"encoding/csv"
	"log/slog"
	"maps"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	netquotas "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/drift"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

var presets = map[string]map[string]int64{
	"small": {"instances": 3, "cores": 6, "ram": 8192, "volumes": 4, "gigabytes": 120,
		"network": 3, "subnet": 3, "router": 2, "floatingip": 1, "port": 33},
}

type nopSetpass struct{}

func (nopSetpass) Issue(ctx context.Context, userID, temp, pin string) (client.Issued, error) {
	return client.Issued{URL: "https://setpass.example.org/?token=x", ExpiresAt: time.Now().Add(time.Hour)}, nil
}

type nopMail struct{}

func (nopMail) Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (int64, bool, error) {
	return 1, true, nil
}

func TestDriftReportedThenRepaired(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	for _, svc := range []string{cloud.ServiceCompute, cloud.ServiceBlockStorage, cloud.ServiceNetwork} {
		testenv.RequireQuotaService(t, svc)
	}
	ctx := t.Context()
	domainID, domain := ks.Domain(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	region := os.Getenv("OS_REGION_NAME")
	if region == "" {
		region = "RegionOne"
	}
	eo := gophercloud.EndpointOpts{Region: region}
	own := testenv.Keystone(t)
	q, err := cloud.NewQuotas(ctx, &cloud.Clients{Provider: own.Identity.ProviderClient, Identity: own.Identity, Endpoint: eo},
		map[string]string{cloud.ServiceCompute: cloud.MethodQuotaSets, cloud.ServiceBlockStorage: cloud.MethodQuotaSets, cloud.ServiceNetwork: cloud.MethodQuotaSets})
	if err != nil {
		t.Fatal(err)
	}
	compute, err := openstack.NewComputeV2(ks.Identity.ProviderClient, eo)
	if err != nil {
		t.Fatal(err)
	}
	netwk, err := openstack.NewNetworkV2(ks.Identity.ProviderClient, eo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pages, _ := projects.List(ks.Identity, projects.ListOpts{DomainID: domainID}).AllPages(ctx)
		ps, _ := projects.ExtractProjects(pages)
		for _, p := range ps {
			if err := q.Reset(ctx, p.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	dir := t.TempDir()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "kaizen.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	// The sign-up sheet: two rows, the second joining the first's project.
	c := config.DefaultSheetColumns()
	hdr := []string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.PIN, c.ProjectName, c.ExistingProject,
		c.QuotaPreset, "vCPUs", c.Approved, c.Status, c.ProcessedAt, c.UserID, c.ProjectID}
	path := filepath.Join(dir, "signups.csv")
	rows := [][]string{hdr,
		{"3/14/2026 14:05:09", "ada@example.org", "Ada", "Lovelace", "4821", "engines", "", "small", "8", "yes"},
		{"3/14/2026 15:00:00", "bob@example.org", "Bob", "Babbage", "1234", "engines", "yes", "", "", "yes"},
		{"3/14/2026 16:00:00", "cy@example.org", "Cy", "Gone", "1111", "gone", "", "small", "", "yes"},
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := csv.NewWriter(f).WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sh := sheet.NewCSV(path)
	reqOpts := signup.Options{QuotaColumns: map[string]string{"vCPUs": "cores"}, DefaultDomain: domain,
		DefaultPreset: "small", Presets: []string{"small"}}
	sum, err := onboard.Run(ctx, onboard.Deps{Identity: cloud.NewKeystone(ks.Identity), Quotas: q, Setpass: nopSetpass{}, Mail: nopMail{}, Sheet: sh, Store: st},
		onboard.Options{Request: reqOpts, Presets: presets, Actor: "test-admin", Source: "csv:" + path, FlushEvery: 10 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatalf("import: %v %+v", err, sum.Rows)
	}
	want := maps.Clone(presets["small"])
	want["cores"] = 8
	project := func(name string) string {
		p, ok, err := cloud.FindProject(ctx, ks.Identity, domainID, name)
		if err != nil || !ok {
			t.Fatalf("project %s: %v %v", name, ok, err)
		}
		return p.ID
	}
	engines, gone := project("engines"), project("gone")
	if rec, err := st.GetQuotaRecord(ctx, engines); err != nil || !maps.Equal(rec.Quotas, want) || !strings.Contains(rec.Change, "row 2") {
		t.Fatalf("import's quota record = %+v, %v; want %v", rec, err, want)
	}
	user := func(name string) cloud.User {
		u, err := cloud.FindUser(ctx, ks.Identity, domainID, name)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	memberID, err := cloud.RoleID(ctx, ks.Identity, "member")
	if err != nil {
		t.Fatal(err)
	}
	check := func(apply bool) drift.Report {
		t.Helper()
		rep, err := drift.Check(ctx, drift.Deps{Identity: cloud.NewKeystone(ks.Identity), Quotas: q, Sheet: sh, Store: st},
			drift.Options{Request: reqOpts, Presets: presets, Apply: apply, Actor: "test-admin", Source: "csv:" + path, Logger: logger})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return rep
	}
	if rep := check(false); len(rep.Drift) != 0 || rep.Rows != 3 || rep.Projects != 2 || rep.Users != 3 {
		t.Fatalf("right after the import: %+v", rep)
	}

	// Behind the tool's back: Bob loses his role, engines' cores and ports
	// change, Cy's project is deleted.
	bob := user("bob@example.org")
	if err := roles.Unassign(ctx, ks.Identity, memberID, roles.UnassignOpts{UserID: bob.ID, ProjectID: engines}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	cores, ports := 50, 500
	if err := computequotas.Update(ctx, compute, engines, computequotas.UpdateOpts{Cores: &cores}).Err; err != nil {
		t.Fatal(err)
	}
	if err := netquotas.Update(ctx, netwk, engines, netquotas.UpdateOpts{Port: &ports}).Err; err != nil {
		t.Fatal(err)
	}
	if err := q.Reset(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := projects.Delete(ctx, ks.Identity, gone).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	kinds := func(rep drift.Report) []string {
		var out []string
		for _, d := range rep.Drift {
			out = append(out, d.Kind+":"+d.Resource+d.User)
		}
		slices.Sort(out)
		return out
	}
	wantKinds := []string{"project-missing:", "quota-differs:cores", "quota-differs:port", "role-missing:bob@example.org"}
	rep := check(false)
	if got := kinds(rep); !slices.Equal(got, wantKinds) || rep.Unrepaired() != 4 {
		t.Fatalf("drift = %v (%+v), want %v", got, rep.Drift, wantKinds)
	}
	for _, d := range rep.Drift {
		switch d.Kind {
		case drift.QuotaDiffers:
			if d.Resource == "cores" && (*d.Got != 50 || *d.Want != 8 || d.Row != 2 || d.ProjectID != engines) {
				t.Errorf("cores drift = %+v", d)
			}
		case drift.RoleMissing:
			if d.Row != 3 || !d.Repairable {
				t.Errorf("role drift = %+v", d)
			}
		case drift.ProjectMissing:
			if d.Row != 4 || d.Repairable || !strings.Contains(d.Detail, "not recreated") {
				t.Errorf("project drift = %+v", d)
			}
		}
	}
	// A report changes nothing.
	if has, _ := cloud.HasProjectRole(ctx, ks.Identity, bob.ID, engines, memberID); has {
		t.Error("the report assigned the role")
	}

	rep = check(true)
	if got := kinds(rep); !slices.Equal(got, wantKinds) || rep.Unrepaired() != 1 {
		t.Fatalf("--apply: %+v, want all but the missing project repaired", rep.Drift)
	}
	if has, err := cloud.HasProjectRole(ctx, ks.Identity, bob.ID, engines, memberID); err != nil || !has {
		t.Errorf("Bob's role after --apply: %v %v", has, err)
	}
	got, err := q.Get(ctx, engines)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("quota %s after --apply = %d, want %d", k, got[k], v)
		}
	}
	evs, err := st.Events(ctx, time.Time{}, engines, 0)
	if err != nil {
		t.Fatal(err)
	}
	var repairs []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Action, "repair.") {
			repairs = append(repairs, ev.Action)
			if ev.Actor != "test-admin" || !strings.HasPrefix(ev.Source, "validate ") {
				t.Errorf("repair event %+v", ev)
			}
			if ev.Action == "repair.quota.set" && (ev.Details["cores"] != "50 -> 8" || ev.Details["port"] != "500 -> 33") {
				t.Errorf("repair.quota.set details %v", ev.Details)
			}
		}
	}
	slices.Sort(repairs)
	if !slices.Equal(repairs, []string{"repair.quota.set", "repair.role.assign"}) {
		t.Errorf("repair events = %v", repairs)
	}
	// Nothing recreated.
	if _, ok, _ := cloud.FindProject(ctx, ks.Identity, domainID, "gone"); ok {
		t.Error("--apply recreated the deleted project")
	}

	// Afterwards only the missing project remains.
	if got := kinds(check(false)); !slices.Equal(got, []string{"project-missing:"}) {
		t.Errorf("after the repair: %v", got)
	}

	// A user deleted behind the tool's back is reported, not recreated.
	if err := users.Delete(ctx, ks.Identity, bob.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	rep = check(true)
	if got := kinds(rep); !slices.Equal(got, []string{"project-missing:", "user-missing:bob@example.org"}) || rep.Unrepaired() != 2 {
		t.Errorf("after deleting Bob: %v", rep.Drift)
	}
}
