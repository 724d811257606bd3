package onboard_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestImportRidesOutOpenStackFaults runs a 30-row import with Keystone and
// the quota APIs behind a proxy that answers 503 to a tenth of the
// requests (some with Retry-After), loses the answer to some writes it
// did pass on, and holds some answers back past the client's timeout. The
// run must end with every row done, nothing created twice, every user
// mailed once, and the retries counted.
func TestImportRidesOutOpenStackFaults(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	fc := testenv.NewFaultyCloud(t, testenv.Faults{
		Seed: 13, Unavailable: 0.10, RetryAfter: 0.3, Lost: 0.04, Slow: 0.02, SlowDelay: 3 * time.Second,
	})

	ao := e.ks.AdminAuthOptions()
	ao.IdentityEndpoint = fc.AuthURL
	ao.AllowReauth = true
	clients, err := cloud.ConnectWith(ctx, ao, e.direct.Endpoint, &http.Client{Timeout: 2 * time.Second},
		cloud.RetryPolicy{MaxWait: 90 * time.Second, Logger: e.logger})
	if err != nil {
		t.Fatalf("ConnectWith through the fault proxy: %v", err)
	}
	if !strings.HasPrefix(clients.Identity.Endpoint, fc.ProxyOrigin("identity")+"/") {
		t.Fatalf("identity endpoint %s is not the proxy's %s", clients.Identity.Endpoint, fc.ProxyOrigin("identity"))
	}
	services := map[string]string{
		cloud.ServiceCompute: cloud.MethodQuotaSets, cloud.ServiceBlockStorage: cloud.MethodQuotaSets,
		cloud.ServiceNetwork: cloud.MethodQuotaSets,
	}
	quotas, err := cloud.NewQuotas(ctx, clients, services)
	if err != nil {
		t.Fatalf("NewQuotas through the fault proxy: %v", err)
	}

	const n = 30
	var rows []formRow
	for i := range n {
		r := row(fmt.Sprintf("user%02d@example.org", i), fmt.Sprintf("faulty-%02d", i))
		if i%3 == 0 {
			r[cols.AdditionalUsers] = fmt.Sprintf("extra%02d@example.org", i)
		}
		if i%2 == 0 {
			r[cols.QuotaPreset] = "large"
		}
		rows = append(rows, r)
	}
	e.write(rows...)

	deps := e.deps()
	deps.Identity, deps.Quotas, deps.Retries = cloud.NewKeystone(clients.Identity), quotas, clients
	sum, err := onboard.Run(ctx, deps, e.opts)
	if rep, derr := e.outbox.Drain(ctx); derr != nil || len(rep.Failures) > 0 {
		t.Fatalf("draining the outbox: %v %+v", derr, rep.Failures)
	}
	for _, r := range sum.Rows {
		if r.Outcome == onboard.Failed {
			t.Errorf("row %d failed: %s", r.Row, r.Error)
		}
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(sum.Rows) != n {
		t.Fatalf("summary has %d rows, want %d", len(sum.Rows), n)
	}
	injected := fc.Injected()
	t.Logf("faults injected: %+v; retries: %v", injected, sum.Retries)
	if fc.InjectedTotal() == 0 {
		t.Fatal("the proxy injected no fault: the test tests nothing")
	}
	total := 0
	for _, v := range sum.Retries {
		total += v
	}
	// Faults injected before this run (while connecting) are not its.
	if total == 0 || sum.Retries["identity"] == 0 {
		t.Errorf("summary counts retries %v, want some, identity's among them", sum.Retries)
	}
	if line := onboard.RetryLine(sum.Retries); !strings.Contains(line, "retried") {
		t.Errorf("RetryLine = %q", line)
	}

	// Read back from Keystone, past the proxy: one project and one user
	// per row, each with its role and quotas, and the sheet says done.
	ps, us := e.projects(), e.users()
	for i := range n {
		rowNum := i + 2
		if got := e.cell(rowNum, cols.Status); !strings.EqualFold(got, signup.StatusDone) {
			t.Errorf("row %d Status = %q, want done", rowNum, got)
		}
		name := fmt.Sprintf("faulty-%02d", i)
		var matching []string
		for _, p := range ps {
			if strings.EqualFold(p.Name, name) {
				matching = append(matching, p.ID)
			}
		}
		if len(matching) != 1 {
			t.Errorf("%d projects named %s, want 1", len(matching), name)
			continue
		}
		emails := []string{fmt.Sprintf("user%02d@example.org", i)}
		if i%3 == 0 {
			emails = append(emails, fmt.Sprintf("extra%02d@example.org", i))
		}
		for _, email := range emails {
			var ids []string
			for _, u := range us {
				if strings.EqualFold(u.Name, email) {
					ids = append(ids, u.ID)
				}
			}
			if len(ids) != 1 {
				t.Errorf("%d users named %s, want 1", len(ids), email)
				continue
			}
			if !slices.Contains(e.roleIDs(ids[0], matching[0]), e.memberRoleID) {
				t.Errorf("%s lacks member on %s", email, name)
			}
			if ms := e.mailsTo(email, subjWelcome); len(ms) != 1 {
				t.Errorf("%d welcome mails to %s, want 1", len(ms), email)
			}
		}
		preset := "small"
		if i%2 == 0 {
			preset = "large"
		}
		got := e.quotaSet(matching[0])
		for k, want := range presets[preset] {
			if got[k] != want {
				t.Errorf("project %s quota %s = %d, want %d (%s)", name, k, got[k], want, preset)
			}
		}
	}
	if len(ps) != n {
		t.Errorf("the domain has %d projects, want %d", len(ps), n)
	}
	if want := n + (n+2)/3; len(us) != want {
		t.Errorf("the domain has %d users, want %d: %v", len(us), want, names(us))
	}
}

// TestFaultOutlastingRetries: a quota API that keeps answering 503 past
// openstack.retry_max_wait fails the row, whose Status names the service
// and the status code; once it recovers, a re-run finishes the row.
func TestFaultOutlastingRetries(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	fc := testenv.NewFaultyCloud(t, testenv.Faults{Seed: 5, Services: []string{cloud.ServiceCompute}})
	ao := e.ks.AdminAuthOptions()
	ao.IdentityEndpoint = fc.AuthURL
	ao.AllowReauth = true
	clients, err := cloud.ConnectWith(ctx, ao, e.direct.Endpoint, &http.Client{Timeout: 30 * time.Second},
		cloud.RetryPolicy{MaxWait: 2 * time.Second, Logger: e.logger})
	if err != nil {
		t.Fatal(err)
	}
	quotas, err := cloud.NewQuotas(ctx, clients, map[string]string{
		cloud.ServiceCompute: cloud.MethodQuotaSets, cloud.ServiceBlockStorage: cloud.MethodQuotaSets,
		cloud.ServiceNetwork: cloud.MethodQuotaSets,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.write(row("outage@example.org", "during-outage"))
	deps := e.deps()
	deps.Identity, deps.Quotas, deps.Retries = cloud.NewKeystone(clients.Identity), quotas, clients

	fc.SetFaults(testenv.Faults{Unavailable: 1}) // compute is down
	sum, err := onboard.Run(ctx, deps, e.opts)
	if !errors.Is(err, onboard.ErrSomeFailed) {
		t.Fatalf("run during the outage: err = %v, want ErrSomeFailed", err)
	}
	r := result(t, sum, 2)
	status := e.cell(2, cols.Status)
	t.Logf("Status: %s", status)
	if r.Outcome != onboard.Failed || !strings.Contains(status, "compute answered 503 Service Unavailable") {
		t.Errorf("row 2: %s, Status %q; want failed naming compute and 503", r.Outcome, status)
	}
	if sum.Retries[cloud.ServiceCompute] == 0 {
		t.Errorf("retries %v, want compute's counted", sum.Retries)
	}

	fc.SetFaults(testenv.Faults{}) // compute is back
	if sum, err := onboard.Run(ctx, deps, e.opts); err != nil {
		t.Fatalf("re-run after the outage: %v %+v", err, sum.Rows)
	}
	if s := e.cell(2, cols.Status); s != signup.StatusDone {
		t.Errorf("Status after the re-run = %q, want done", s)
	}
	if got := e.quotaSet(e.project("during-outage").ID); got["instances"] != presets["small"]["instances"] {
		t.Errorf("quotas after the re-run: %v", got)
	}
}
