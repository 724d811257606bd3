package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// treeState is every file and directory under the roots: its mode, size,
// modification time and a hash of its bytes.
func treeState(t *testing.T, roots ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			sum := ""
			if fi.Mode().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum = fmt.Sprintf("%x", sha256.Sum256(b))
			}
			m[p] = fmt.Sprintf("%s %d %s %s", fi.Mode(), fi.Size(), fi.ModTime().UTC().Format("2006-01-02T15:04:05.000000000"), sum)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func sameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s removed %s", what, p)
		} else if a != b {
			t.Errorf("%s changed %s:\n  before %s\n  after  %s", what, p, b, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s created %s", what, p)
		}
	}
}

// TestPlanChangesNothing: addusers plan and addusers quotas --dry-run,
// run as an operator runs them (settings naming no store, so the default
// one under STATE_DIRECTORY), against the real Keystone and quota
// services, create no file anywhere (no store, no lock file, nothing in
// the working directory) when no store exists yet, and leave an existing
// store's bytes and times as they were (no migration, no write).
func TestPlanChangesNothing(t *testing.T) {
	ks := testenv.Keystone(t)
	for _, svc := range []string{cloud.ServiceCompute, cloud.ServiceBlockStorage, cloud.ServiceNetwork} {
		testenv.RequireQuotaService(t, svc)
	}
	ctx := t.Context()
	domainID, domain := ks.Domain(t)
	p, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: "engines", DomainID: domainID, Tags: []string{cloud.KaizenTag}}).Extract()
	if err != nil {
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

	// The settings and the sheets, in a directory of their own.
	inputs := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(inputs, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	settings := write("settings.toml", fmt.Sprintf(`
[openstack]
domain = %q
[secrets]
keys = ["plan-test-secret-key-0123456789abcdef0123456789"]
[mail]
transport = "maildir"
maildir = %q
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
`, domain, filepath.Join(inputs, "mail")))
	c := config.DefaultSheetColumns()
	signups := write("signups.csv", strings.Join([]string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.PIN, c.ProjectName,
		c.ExistingProject, c.Approved, c.Status, c.ProcessedAt}, ",")+"\n"+
		"3/14/2026 14:05:09,grace@example.org,Grace,Hopper,4821,compilers,no,yes,,\n")
	requests := write("requests.csv", "Timestamp,Email,Project,Quota Preset,Approved,Status,Processed At\n"+
		"5/30/2026 10:00:00,ada@example.org,engines,medium,yes,,\n")

	// runIn runs addusers in the working directory work with the default
	// store under state.
	runIn := func(t *testing.T, work, state string, args ...string) (int, string, string) {
		t.Helper()
		t.Chdir(work)
		getenv := func(k string) string {
			if k == "STATE_DIRECTORY" {
				return state
			}
			return dmGetenv(k)
		}
		return runMain(t, getenv, append([]string{"--config", settings}, args...)...)
	}
	check := func(t *testing.T, work, state string) {
		t.Helper()
		code, out, errOut := runIn(t, work, state, "plan", "--sheet", signups)
		if code != 0 || !strings.Contains(out, "plan: 1 created") || !strings.Contains(out, "grace@example.org") {
			t.Errorf("plan: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, errOut = runIn(t, work, state, "quotas", "--sheet", requests, "--dry-run")
		if code != 0 || !strings.Contains(out, "would apply") || !strings.Contains(out, "dry run: 1 applied") {
			t.Errorf("quotas --dry-run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	}

	t.Run("no store yet: no file anywhere", func(t *testing.T) {
		parent := t.TempDir()
		state, work := filepath.Join(parent, "state"), filepath.Join(parent, "work")
		if err := os.Mkdir(work, 0o700); err != nil {
			t.Fatal(err)
		}
		before := treeState(t, parent, inputs)
		check(t, work, state)
		sameTree(t, "a run that changes nothing", before, treeState(t, parent, inputs))
	})

	t.Run("existing store: not migrated, not written", func(t *testing.T) {
		state, work := t.TempDir(), t.TempDir()
		st, err := store.Open(ctx, "sqlite://"+filepath.Join(state, "kaizen.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.StoreID(ctx, "plan-test-store"); err != nil {
			t.Fatal(err)
		}
		if err := st.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: p.ID, Quotas: map[string]int64{"instances": 3, "cores": 6, "ram": 8192, "port": 33},
			Preset: "small", ChangedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		before := treeState(t, state, work, inputs)
		check(t, work, state)
		sameTree(t, "a run that changes nothing", before, treeState(t, state, work, inputs))
	})
}
