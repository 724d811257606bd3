package quotareq_test

// Integration tests of addusers quotas against the real Keystone and quota
// services (harness_test.go).

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/quotareq"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

const subjChanged = "Quota changed for "

// wantTable checks that a quota-changed mail's table holds each line,
// "resource|before|now".
func wantTable(t *testing.T, m gotMail, lines ...string) {
	t.Helper()
	for _, l := range lines {
		f := strings.Split(l, "|")
		re := `(?m)^\s+` + regexp.QuoteMeta(f[0]) + `\s+` + regexp.QuoteMeta(f[1]) + `\s+` + regexp.QuoteMeta(f[2]) + `$`
		if !regexp.MustCompile(re).MatchString(m.Text) {
			t.Errorf("mail to %v lacks the line %q:\n%s", m.To, l, m.Text)
		}
	}
}

func TestApprovedIncrease(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		p := e.project("engines", presets["small"])
		ada := e.user("ada@example.org", "Ada Lovelace")
		bob := e.user("bob@example.org", "Bob Babbage")
		carol := e.user("carol@example.org", "Carol Clement")
		e.user("dave@example.org", "Dave Outsider") // no role: no mail
		eve := e.user("eve@example.org", "Eve Gone")
		e.member(ada.ID, p.ID)
		e.member(bob.ID, p.ID)
		e.member(eve.ID, p.ID)
		if err := e.id.SetUserEnabled(ctx, eve.ID, false); err != nil {
			t.Fatal(err)
		}
		// Carol is a member through a group.
		g, err := e.id.CreateGroup(ctx, e.domainID, "engineers")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.id.AddUserToGroup(ctx, g.ID, carol.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.id.AssignRole(ctx, cloud.Grant{GroupID: g.ID, RoleID: e.memberRoleID, ProjectID: p.ID}); err != nil {
			t.Fatal(err)
		}

		// More instances and RAM; no ports given, so ports follow:
		// max(33, 2*20 + 3*3) = 49.
		e.write(request("5/30/2026 10:00:00", "Ada@Example.org", "engines", "Instances", "20", "vCPUs", "12", "RAM (GB)", "16"))
		sum, err := e.run()
		if err != nil {
			t.Fatalf("Run: %v %+v", err, sum.Rows)
		}
		res := result(t, sum, 2)
		if res.Outcome != quotareq.Applied || res.Approval != "sheet" || res.ProjectID != p.ID || res.WriteBack != "" {
			t.Fatalf("row 2 = %+v", res)
		}
		e.wantQuotas(p.ID, presets["small"], map[string]int64{"instances": 20, "cores": 12, "ram": 16384, "port": 49})

		if got := e.cell(2, cols.Status); got != "done" {
			t.Errorf("Status = %q, want done", got)
		}
		if at, err := time.Parse(time.RFC3339, e.cell(2, cols.ProcessedAt)); err != nil || !at.Equal(e.clock()) {
			t.Errorf("Processed At = %q (%v), want the run's time", e.cell(2, cols.ProcessedAt), err)
		}

		// Every enabled member, Carol through her group, gets the table.
		for _, addr := range []string{"ada@example.org", "bob@example.org", "carol@example.org"} {
			ms := e.mailsTo(addr)
			if len(ms) != 1 || ms[0].Subject != subjChanged+"engines on Test Cloud" {
				t.Fatalf("mail to %s = %v, want one quota-changed", addr, ms)
			}
			wantTable(t, ms[0], "Instances|3|20", "vCPUs|6|12", "RAM|8 GiB|16 GiB", "Ports|33|49")
			if strings.Contains(ms[0].Text, "Volumes") {
				t.Errorf("the table lists an unchanged quota:\n%s", ms[0].Text)
			}
		}
		if m := e.mailsTo("ada@example.org")[0]; !strings.Contains(m.Text, "Hello Ada Lovelace,") {
			t.Errorf("greeting:\n%s", m.Text)
		}
		if n := len(e.mails()); n != 3 {
			t.Errorf("%d mails, want 3 (not Dave, no role; not Eve, disabled)", n)
		}

		rec := e.record(p.ID)
		if rec.Quotas["cores"] != 12 || rec.Quotas["port"] != 49 || rec.Before["cores"] != 6 || rec.EndsOn != nil ||
			!rec.ChangedAt.Equal(e.clock()) || !strings.HasPrefix(rec.Change, "quota-request:") {
			t.Errorf("record = %+v", rec)
		}
		evs := e.events("quota.change")
		if len(evs) != 1 || evs[0].Target != p.ID || evs[0].Details["cores"] != "6 -> 12" || evs[0].Details["requester"] != "ada@example.org" ||
			evs[0].Actor != "test-admin" {
			t.Errorf("quota.change events = %+v", evs)
		}

		// Again: the row is finished, nothing happens.
		sum, err = e.run()
		if err != nil || len(sum.Rows) != 0 || sum.Finished != 1 {
			t.Errorf("second run = %+v, %v; want nothing, 1 finished", sum, err)
		}
		if n := len(e.mails()); n != 3 {
			t.Errorf("%d mails after a second run, want still 3", n)
		}
	})
}

func TestRequesterNotMemberRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		p := e.project("engines", presets["small"])
		other := e.project("other", presets["small"])
		ada := e.user("ada@example.org", "Ada Lovelace")
		e.member(ada.ID, other.ID) // a member elsewhere only
		bob := e.user("bob@example.org", "Bob Babbage")
		e.member(bob.ID, p.ID)
		e.write(
			request("5/30/2026 10:00:00", "ada@example.org", "engines", cols.Preset, "large"),
			request("5/30/2026 10:01:00", "nobody@example.org", "engines", cols.Preset, "large"),
			request("5/30/2026 10:02:00", "ada@example.org", "ghost", cols.Preset, "large"),
		)
		sum, err := e.run()
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		for row, want := range map[int]string{
			2: `refused: ada@example.org holds no role on project "engines"; only its members may ask for its quotas`,
			3: `refused: nobody@example.org has no account in domain`,
			4: `refused: no project "ghost" in domain`,
		} {
			if res := result(t, sum, row); res.Outcome != quotareq.Refused {
				t.Errorf("row %d = %+v, want refused", row, res)
			}
			if got := e.cell(row, cols.Status); !strings.HasPrefix(got, want) {
				t.Errorf("row %d Status = %q, want %q...", row, got, want)
			}
		}
		e.wantQuotas(p.ID, presets["small"], nil)
		if ms := e.mails(); len(ms) != 0 {
			t.Errorf("mail sent for refused requests: %v", ms)
		}
		if evs := e.events("quota.change"); len(evs) != 0 {
			t.Errorf("quota.change audited for refused requests: %+v", evs)
		}
		if _, err := e.store.GetQuotaRecord(t.Context(), p.ID); err == nil {
			t.Error("a refused request left a quota record")
		}
		// Refused rows are finished.
		if sum, _ := e.run(); len(sum.Rows) != 0 || sum.Finished != 3 {
			t.Errorf("second run = %+v, want 3 finished", sum)
		}
	})
}

func TestAutoApproval(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		now := e.clock()
		ada := e.user("ada@example.org", "Ada Lovelace")
		type tc struct {
			name    string
			current map[string]int64
			changed time.Duration // the record's age; 0: no record
			ask     []string
			outcome quotareq.Outcome
			reason  string
		}
		near := map[string]int64{}
		for k, v := range presets["small"] {
			near[k] = v
		}
		near["ram"], near["port"] = 8192+800, 33-3 // within 10%
		custom := map[string]int64{"instances": 5, "cores": 9, "ram": 10240}
		cases := []tc{
			{"shrink", presets["large"], 24 * time.Hour, []string{cols.Preset, "medium"}, quotareq.Applied, "auto-approved: medium is not larger than the current preset large"},
			{"grow", presets["small"], 40 * 24 * time.Hour, []string{cols.Preset, "medium"}, quotareq.Applied, "auto-approved: one preset up (small to medium), no change for 30 days"},
			{"recent", presets["small"], 5 * 24 * time.Hour, []string{cols.Preset, "medium"}, quotareq.Pending, "less than 30 days ago"},
			{"leap", presets["small"], 40 * 24 * time.Hour, []string{cols.Preset, "large"}, quotareq.Pending, "more than one preset up"},
			{"custom-now", custom, 0, []string{cols.Preset, "medium"}, quotareq.Pending, "match no preset within 10%"},
			{"near", near, 0, []string{cols.Preset, "medium"}, quotareq.Applied, "one preset up (small to medium)"},
			{"custom-ask", presets["small"], 40 * 24 * time.Hour, []string{"vCPUs", "10"}, quotareq.Pending, "custom quotas"},
		}
		var rows []ask
		ids := map[string]string{}
		for i, c := range cases {
			base := presets["small"]
			p := e.project(c.name, base)
			e.setQuotas(p.ID, c.current)
			ids[c.name] = p.ID
			e.member(ada.ID, p.ID)
			if c.changed > 0 {
				if err := e.store.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: p.ID, Quotas: c.current, ChangedAt: now.Add(-c.changed)}); err != nil {
					t.Fatal(err)
				}
			}
			r := request(time.Date(2026, 5, 30, 10, i, 0, 0, time.UTC).Format("1/2/2006 15:04:05"), "ada@example.org", c.name, c.ask...)
			r[cols.Approved] = "" // nobody decided
			rows = append(rows, r)
		}
		rejected := request("5/30/2026 11:00:00", "ada@example.org", "shrink", cols.Preset, "small", cols.Approved, "no")
		rows = append(rows, rejected)
		e.write(rows...)

		// Off: every undecided row waits, and nothing is written.
		sum, err := e.run()
		if err != nil || len(sum.Rows) != 0 || sum.Waiting != len(rows) {
			t.Fatalf("auto-approval off: %+v, %v; want all waiting", sum, err)
		}

		on := func(o *quotareq.Options) { o.AutoApprove = true }
		sum, err = e.run(on)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		for i, c := range cases {
			res := result(t, sum, i+2)
			got := res.Approval
			if res.Outcome == quotareq.Pending {
				got = res.Detail
			}
			if res.Outcome != c.outcome || !strings.Contains(got, c.reason) {
				t.Errorf("%s: %s %q, want %s %q", c.name, res.Outcome, got, c.outcome, c.reason)
			}
			status := e.cell(i+2, cols.Status)
			switch c.outcome {
			case quotareq.Applied:
				if !strings.HasPrefix(status, "done; auto-approved: ") {
					t.Errorf("%s: Status %q", c.name, status)
				}
				target := map[string]string{"shrink": "medium", "grow": "medium", "near": "medium"}[c.name]
				e.wantQuotas(ids[c.name], presets[target], nil)
			case quotareq.Pending:
				if !strings.HasPrefix(status, "pending approval: ") || !strings.Contains(status, c.reason) {
					t.Errorf("%s: Status %q", c.name, status)
				}
				want := presets["small"]
				e.wantQuotas(ids[c.name], want, c.current)
			}
		}
		if sum.Waiting != 1 {
			t.Errorf("waiting = %d, want 1 (the rejected row)", sum.Waiting)
		}

		// A pending row keeps its Status untouched run after run...
		stamp := e.cell(4, cols.ProcessedAt)
		e.setNow(now.Add(time.Hour))
		if _, err := e.run(on); err != nil {
			t.Fatal(err)
		}
		if got := e.cell(4, cols.ProcessedAt); got != stamp {
			t.Errorf("a pending row was written again: Processed At %q, was %q", got, stamp)
		}
		// ...until a person approves it.
		e.setCell(4, cols.Approved, "yes")
		sum, err = e.run(on)
		if err != nil {
			t.Fatal(err)
		}
		if res := result(t, sum, 4); res.Outcome != quotareq.Applied || res.Approval != "sheet" {
			t.Errorf("recent, once approved = %+v", res)
		}
		e.wantQuotas(ids["recent"], presets["medium"], nil)
		if got := e.cell(4, cols.Status); got != "done" {
			t.Errorf("recent Status = %q", got)
		}
	})
}

func TestTemporaryQuotaReverted(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		p := e.project("engines", presets["small"])
		ada := e.user("ada@example.org", "Ada Lovelace")
		e.member(ada.ID, p.ID)
		// As import leaves it: a record of the preset.
		if err := e.store.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: p.ID, Quotas: presets["small"], Preset: "small",
			ChangedAt: e.clock().AddDate(0, -2, 0), Change: "import"}); err != nil {
			t.Fatal(err)
		}
		// A kaizen project whose end tag passed without a record (set by hand).
		hand := e.project("handmade", presets["small"], cloud.QuotaEndTag(time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)))
		// A temporary quota ending 6/20, extended by hand by replacing its tag
		// (as the quota-expiry job's notice offers).
		ext := e.project("extended", presets["medium"], cloud.QuotaEndTag(time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC)))
		june20 := time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC)
		if err := e.store.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: ext.ID, Quotas: presets["medium"], EndsOn: &june20,
			Previous: presets["small"], ChangedAt: e.clock()}); err != nil {
			t.Fatal(err)
		}

		e.write(request("5/30/2026 10:00:00", "ada@example.org", "engines",
			cols.Duration, "Temporary", cols.EndDate, "6/30/2026", cols.Preset, "medium", "Volumes", "10"))
		sum, err := e.run()
		if err != nil {
			t.Fatalf("Run: %v %+v", err, sum.Rows)
		}
		if res := result(t, sum, 2); res.Outcome != quotareq.Applied || res.EndsOn != "2026-06-30" {
			t.Fatalf("row 2 = %+v", res)
		}
		e.wantQuotas(p.ID, presets["medium"], map[string]int64{"volumes": 10})
		if got := e.cell(2, cols.Status); got != "done; temporary until 2026-06-30" {
			t.Errorf("Status = %q", got)
		}
		// The tag the reminders daemon's quota-expiry job reads.
		if end, ok := cloud.QuotaEnd(e.tags(p.ID)); !ok || end.Format(time.DateOnly) != "2026-06-30" {
			t.Errorf("tags %v: quota end %v %v, want 2026-06-30", e.tags(p.ID), end, ok)
		}
		rec := e.record(p.ID)
		if rec.EndsOn == nil || rec.EndsOn.Format(time.DateOnly) != "2026-06-30" || rec.Previous["cores"] != 6 || rec.Previous["volumes"] != 4 {
			t.Errorf("record = %+v", rec)
		}

		// On its last day nothing is reverted.
		e.setNow(time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC))
		sum, err = e.revert()
		byID := func(sum quotareq.Summary) map[string]quotareq.RowResult {
			m := map[string]quotareq.RowResult{}
			for _, r := range sum.Rows {
				m[r.ProjectID] = r
			}
			return m
		}
		rows := byID(sum)
		if h := rows[hand.ID]; len(rows) != 2 || h.Outcome != quotareq.Failed || !strings.Contains(h.Detail, "no record of the quotas before it") {
			t.Fatalf("revert on the last day = %+v, %v; want the handmade tag reported and the extension taken", sum.Rows, err)
		}
		// The hand-made extension: the tag's later date wins.
		if x := rows[ext.ID]; x.Outcome != quotareq.Unchanged || x.EndsOn != "2026-07-15" {
			t.Errorf("the project extended by its tag: %+v", x)
		}
		e.wantQuotas(ext.ID, presets["medium"], nil)
		if r := e.record(ext.ID); r.EndsOn == nil || r.EndsOn.Format(time.DateOnly) != "2026-07-15" {
			t.Errorf("record of the extended project = %+v", r)
		}
		e.wantQuotas(p.ID, presets["medium"], map[string]int64{"volumes": 10})

		// The day after, it is.
		e.setNow(time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC))
		before := len(e.mailsTo("ada@example.org"))
		sum, err = e.revert()
		if err == nil {
			t.Error("RevertExpired with an unrevertable project: no error")
		}
		rows = byID(sum)
		if len(rows) != 2 {
			t.Errorf("revert the day after = %+v, want the project and the handmade tag", sum.Rows)
		}
		var got *quotareq.RowResult
		if r, ok := rows[p.ID]; ok {
			got = &r
		}
		if got == nil || got.Outcome != quotareq.Reverted || got.EndsOn != "2026-06-30" || got.Mail != 1 {
			t.Fatalf("revert = %+v", sum.Rows)
		}
		e.wantQuotas(p.ID, presets["small"], nil)
		if slices.ContainsFunc(e.tags(p.ID), func(tag string) bool { return strings.HasPrefix(tag, cloud.QuotaEndTagPrefix) }) {
			t.Errorf("tags after the revert: %v", e.tags(p.ID))
		}
		ms := e.mailsTo("ada@example.org")
		if len(ms) != before+1 {
			t.Fatalf("mails to ada: %v", ms)
		}
		wantTable(t, ms[len(ms)-1], "vCPUs|12|6", "Volumes|10|4", "Ports|66|33")
		rec = e.record(p.ID)
		if rec.EndsOn != nil || rec.Previous != nil || rec.Quotas["cores"] != 6 || rec.Quotas["volumes"] != 4 {
			t.Errorf("record after the revert = %+v", rec)
		}
		if evs := e.events("quota.revert"); len(evs) != 1 || evs[0].Target != p.ID || evs[0].Details["cores"] != "12 -> 6" {
			t.Errorf("quota.revert events = %+v", evs)
		}
		// Once only.
		if sum, _ := e.revert(); len(sum.Rows) != 1 || sum.Rows[0].ProjectID != hand.ID {
			t.Errorf("second revert = %+v", sum.Rows)
		}
	})
}
