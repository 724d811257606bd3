package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

func TestQuotasValidateUsage(t *testing.T) {
	getenv := openrc(nil)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"quotas", "--help"}, 0, "--revert-expired"},
		{[]string{"quotas", "--help"}, 0, "2 x instances + 3 x networks"},
		{[]string{"validate", "--help"}, 0, "never\nrecreated"},
		{[]string{"quotas", "--output", "xml"}, 2, "--output must be table or json"},
		{[]string{"quotas", "--revert-expired", "--sheet", "x.csv"}, 2, "reads no sheet"},
		{[]string{"quotas", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"validate", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"validate", "--output", "yaml"}, 2, "--output must be table or json"},
	} {
		code, out, errOut := runMain(t, getenv, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("addusers %s: exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, out, errOut)
		}
	}
}

// TestQuotasAndValidateCommands runs addusers quotas and addusers validate
// as an operator would, wired from a settings file, against the real
// Keystone and quota services.
func TestQuotasAndValidateCommands(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	for _, svc := range []string{cloud.ServiceCompute, cloud.ServiceBlockStorage, cloud.ServiceNetwork} {
		testenv.RequireQuotaService(t, svc)
	}
	ctx := t.Context()
	domainID, domain := ks.Domain(t)
	dir := t.TempDir()
	region := os.Getenv("OS_REGION_NAME")
	if region == "" {
		region = "RegionOne"
	}
	eo := gophercloud.EndpointOpts{Region: region}
	q, err := cloud.NewQuotas(ctx, &cloud.Clients{Provider: ks.Identity.ProviderClient, Identity: ks.Identity, Endpoint: eo},
		config.Defaults().Quotas.Services)
	if err != nil {
		t.Fatal(err)
	}
	small := map[string]int64{"instances": 3, "cores": 6, "ram": 8192, "port": 33}
	medium := map[string]int64{"instances": 6, "cores": 12, "ram": 16384, "port": 66}
	p, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: "engines", DomainID: domainID, Tags: []string{cloud.KaizenTag}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Reset(t.Context(), p.ID) })
	if _, err := q.Apply(ctx, p.ID, small); err != nil {
		t.Fatal(err)
	}
	u, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: "ada@example.org", DomainID: domainID, Description: "Ada Lovelace",
		Extra: map[string]any{"email": "ada@example.org"}}).Extract()
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

	settings := filepath.Join(dir, "settings.toml")
	maildir := filepath.Join(dir, "mail")
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(settings, fmt.Sprintf(`
[openstack]
domain = %q
[secrets]
keys = ["quotas-test-secret-key-0123456789abcdef0123456789"]
[mail]
transport = "maildir"
maildir = %q
[store]
url = "sqlite://%s"
[quotas]
default_preset = "small"
[quotas.presets.small]
instances = 3
cores = 6
ram = 8192
port = 33
[quotas.presets.medium]
instances = 6
cores = 12
ram = 16384
port = 66
[log]
level = "warn"
`, domain, maildir, filepath.Join(dir, "kaizen.db")))
	requests := filepath.Join(dir, "requests.csv")
	write(requests, "Timestamp,Email,Project,Quota Preset,Approved,Status,Processed At\n5/30/2026 10:00:00,ada@example.org,engines,medium,yes,,\n")
	c := config.DefaultSheetColumns()
	signups := filepath.Join(dir, "signups.csv")
	write(signups, strings.Join([]string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.PIN, c.ProjectName, c.ExistingProject,
		c.Approved, c.Status, c.ProcessedAt, c.UserID, c.ProjectID}, ",")+"\n"+
		"3/14/2026 14:05:09,ada@example.org,Ada,Lovelace,(registered),engines,yes,yes,done,2026-03-14T15:00:00Z,"+u.ID+","+p.ID+"\n")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return runMain(t, dmGetenv, append([]string{"--config", settings}, args...)...)
	}
	quotasNow := func() map[string]int64 {
		got, err := q.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]int64{"instances": got["instances"], "cores": got["cores"], "ram": got["ram"], "port": got["port"]}
	}

	// A dry run plans and changes nothing.
	code, out, errOut := run("quotas", "--sheet", requests, "--dry-run", "--output", "json")
	var plan struct {
		Rows []struct {
			Outcome, Detail string
			Changes         []struct{ Resource string }
		}
	}
	if err := json.Unmarshal([]byte(out), &plan); code != 0 || err != nil || len(plan.Rows) != 1 || plan.Rows[0].Outcome != "applied" ||
		plan.Rows[0].Detail != "would apply" || len(plan.Rows[0].Changes) != 4 {
		t.Fatalf("quotas --dry-run: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
	}
	if got := quotasNow(); fmt.Sprint(got) != fmt.Sprint(small) {
		t.Fatalf("a dry run changed the quotas: %v", got)
	}

	code, out, errOut = run("quotas", "--sheet", requests)
	if code != 0 || !strings.Contains(out, "applied") || !strings.Contains(out, "cores 6->12") || !strings.Contains(out, "mail: 1 queued, 1 delivered") {
		t.Fatalf("quotas: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got := quotasNow(); fmt.Sprint(got) != fmt.Sprint(medium) {
		t.Errorf("quotas after the request: %v, want %v", got, medium)
	}
	if b, _ := os.ReadFile(requests); !strings.Contains(string(b), ",done,") {
		t.Errorf("Status not written back:\n%s", b)
	}
	if files, _ := filepath.Glob(filepath.Join(maildir, "new", "*")); len(files) != 1 {
		t.Errorf("maildir has %d messages, want 1 quota-changed", len(files))
	}

	// Validate: clean, then drift, then repaired.
	if code, out, errOut := run("validate", "--sheet", signups); code != 0 || !strings.Contains(out, "0 difference(s)") {
		t.Fatalf("validate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	cores := 99
	compute, err := openstack.NewComputeV2(ks.Identity.ProviderClient, eo)
	if err != nil {
		t.Fatal(err)
	}
	if err := computequotas.Update(ctx, compute, p.ID, computequotas.UpdateOpts{Cores: &cores}).Err; err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run("validate", "--sheet", signups)
	if code != 1 || !strings.Contains(out, "quota-differs") || !strings.Contains(out, "quota cores is 99, its store record says 12") ||
		!strings.Contains(out, "--apply repairs") || !strings.Contains(errOut, "drift found: 1 difference(s)") {
		t.Fatalf("validate with drift: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = run("validate", "--sheet", signups, "--apply", "--output", "json")
	var rep struct {
		Drift []struct {
			Kind     string
			Repaired bool
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Drift) != 1 || !rep.Drift[0].Repaired {
		t.Fatalf("validate --apply: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
	}
	if got := quotasNow(); got["cores"] != 12 {
		t.Errorf("cores after validate --apply = %d, want 12", got["cores"])
	}
}
