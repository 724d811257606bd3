package onboard_test

// Integration tests of onboard.Run against the real Keystone and quota
// services, the Sheets fake through the real client, the real outbox over
// SMTP and a real setpass service (harness_test.go). Every assertion reads
// the services' own APIs, not onboard's view of them.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// wantStatusDone checks the written-back cells of a row that succeeded.
func (e *env) wantStatusDone(n int, userID, projectID string, since time.Time) {
	e.t.Helper()
	if got := e.cell(n, cols.Status); got != signup.StatusDone {
		e.t.Errorf("row %d Status = %q, want %q", n, got, signup.StatusDone)
	}
	at, err := time.Parse(time.RFC3339, e.cell(n, cols.ProcessedAt))
	if err != nil || at.Before(since.Add(-time.Second).Truncate(time.Second)) || at.After(time.Now().Add(time.Second)) {
		e.t.Errorf("row %d Processed At = %q (%v), want an RFC 3339 time of this run", n, e.cell(n, cols.ProcessedAt), err)
	}
	if got := e.cell(n, cols.UserID); got != userID {
		e.t.Errorf("row %d User ID = %q, want %q", n, got, userID)
	}
	if got := e.cell(n, cols.ProjectID); got != projectID {
		e.t.Errorf("row %d Project ID = %q, want %q", n, got, projectID)
	}
	if got := e.cell(n, cols.PIN); got != signup.PINRegistered {
		e.t.Errorf("row %d PIN = %q, want %q", n, got, signup.PINRegistered)
	}
}

// wantStatusError checks that row n failed on the sheet with a message
// holding every one of parts.
func (e *env) wantStatusError(n int, parts ...string) {
	e.t.Helper()
	got := e.cell(n, cols.Status)
	if !strings.HasPrefix(got, "error: ") {
		e.t.Errorf("row %d Status = %q, want \"error: ...\"", n, got)
	}
	for _, p := range parts {
		if !strings.Contains(got, p) {
			e.t.Errorf("row %d Status = %q, want it to mention %q", n, got, p)
		}
	}
	if _, err := time.Parse(time.RFC3339, e.cell(n, cols.ProcessedAt)); err != nil {
		e.t.Errorf("row %d Processed At = %q: %v", n, e.cell(n, cols.ProcessedAt), err)
	}
}

func wantRoles(t *testing.T, e *env, userID, projectID string) {
	t.Helper()
	if got := e.roleIDs(userID, projectID); !slices.Equal(got, []string{e.memberRoleID}) {
		t.Errorf("roles of user %s on project %s = %v, want just member (%s)", userID, projectID, got, e.memberRoleID)
	}
}

func TestNewUserNewProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	const lower = "ada.lovelace@example.org"
	e.write(row("Ada.Lovelace@Example.ORG", "engines", cols.QuotaPreset, "Small", ramColumn, "16"))

	start := time.Now()
	sum := e.mustRun()
	res := result(t, sum, 2)
	if res.Outcome != onboard.Created || res.Error != "" || res.WriteBack != "" {
		t.Fatalf("row 2 = %+v, want created, written back", res)
	}
	if sum.Mail != 2 || sum.Counts[string(onboard.Created)] != 1 {
		t.Errorf("summary mail %d, counts %v; want 2 mails, 1 created", sum.Mail, sum.Counts)
	}

	// Keystone's view.
	if ps := e.projects(); len(ps) != 1 {
		t.Fatalf("%d projects in the domain, want 1", len(ps))
	}
	p := e.project("engines")
	for _, tag := range []string{cloud.KaizenTag, "kaizen-request:" + lower, "requested-" + defaultDate} {
		if !slices.Contains(p.Tags, tag) {
			t.Errorf("project tags %v lack %q", p.Tags, tag)
		}
	}
	if p.Description != "Difference engine simulations" || !p.Enabled {
		t.Errorf("project description %q, enabled %v", p.Description, p.Enabled)
	}
	if us := e.users(); len(us) != 1 {
		t.Fatalf("users in the domain = %v, want just %s", names(us), lower)
	}
	u := e.user(lower)
	if u.Extra["email"] != lower || u.DefaultProjectID != p.ID || u.Description != "Ada Lovelace" || !u.Enabled {
		t.Errorf("user email %v, default project %q, description %q, enabled %v; want %s, %s, Ada Lovelace, true",
			u.Extra["email"], u.DefaultProjectID, u.Description, u.Enabled, lower, p.ID)
	}
	if u.Extra[cloud.OwnerAttr] != lower {
		t.Errorf("user %s = %v, want %s", cloud.OwnerAttr, u.Extra[cloud.OwnerAttr], lower)
	}
	wantRoles(t, e, u.ID, p.ID)
	if res.UserID != u.ID || res.ProjectID != p.ID {
		t.Errorf("summary IDs %s/%s, Keystone's %s/%s", res.UserID, res.ProjectID, u.ID, p.ID)
	}

	// Nova's, Cinder's and Neutron's view: the preset, RAM from GB to MiB.
	want := maps.Clone(presets["small"])
	want["ram"] = 16 * 1024
	if got := e.quotaSet(p.ID); !maps.Equal(got, want) {
		t.Errorf("quotas = %v, want %v", got, want)
	}

	// The mail.
	if ms := e.mails(); len(ms) != 2 {
		t.Fatalf("delivered %v, want a welcome and a new-project message", ms)
	}
	welcome := e.oneMail(lower, subjWelcome)
	if welcome.Subject != "Your Test Cloud account is ready: set your password" || !slices.Equal(welcome.To, []string{lower}) {
		t.Errorf("welcome: subject %q, to %v", welcome.Subject, welcome.To)
	}
	for _, s := range []string{"Hello Ada Lovelace,", "Username: " + lower, "Project:  engines",
		"the 4-digit PIN you chose on the sign-up form"} {
		if !strings.Contains(welcome.Text, s) {
			t.Errorf("welcome text lacks %q:\n%s", s, welcome.Text)
		}
	}
	if strings.Contains(welcome.Text, "Domain:") {
		t.Errorf("welcome names the only domain:\n%s", welcome.Text)
	}
	np := e.oneMail(lower, subjProject)
	if np.Subject != "Your project engines on Test Cloud is ready" || !strings.Contains(np.Text, "The project engines has been created") {
		t.Errorf("new-project mail %q:\n%s", np.Subject, np.Text)
	}
	for _, line := range []string{`Instances\s+3`, `vCPUs\s+6`, `RAM\s+16 GiB`, `Volumes\s+4`, `Volume storage\s+120 GiB`,
		`Networks\s+3`, `Routers\s+2`, `Floating IPs\s+1`, `Ports\s+33`} {
		if !regexp.MustCompile(`(?m)^\s+` + line + `$`).MatchString(np.Text) {
			t.Errorf("new-project quota table lacks %q:\n%s", line, np.Text)
		}
	}

	// The link works, and the password it sets is the account's.
	e.completeLink(e.link(welcome), defaultPIN, newPassword)
	if !e.authenticates(lower, newPassword) {
		t.Error("the password set through the link is refused")
	}
	if _, err := e.ks.AuthenticateUserInProject(ctx, e.domainID, lower, newPassword, p.ID); err != nil {
		t.Errorf("a token scoped to the project: %v", err)
	}

	// The sheet.
	e.wantStatusDone(2, u.ID, p.ID, start)

	// The audit trail.
	evs := e.events()
	acts := actions(evs)
	for action, n := range map[string]int{"project.create": 1, "user.create": 1, "role.assign": 1, "quota.set": 1,
		"setpass.issue": 1, "mail.queue": 2} {
		if acts[action] != n {
			t.Errorf("%d %s events, want %d (all: %v)", acts[action], action, n, acts)
		}
	}
	for _, ev := range evs {
		if ev.Actor != actor || !strings.Contains(ev.Source, "row 2") || !strings.Contains(ev.Source, e.opts.Source) {
			t.Errorf("event %+v: want actor %s and a source naming row 2 of %s", ev, actor, e.opts.Source)
		}
		switch ev.Action {
		case "project.create", "quota.set", "role.assign":
			if ev.Target != p.ID {
				t.Errorf("%s target %s, want the project %s", ev.Action, ev.Target, p.ID)
			}
		case "user.create", "setpass.issue", "mail.queue":
			if ev.Target != u.ID {
				t.Errorf("%s target %s, want the user %s", ev.Action, ev.Target, u.ID)
			}
		}
	}

	// The run let go of its lock.
	if err := e.store.AcquireLock(ctx, "addusers:"+e.opts.Source, "next-run", time.Now(), time.Minute); err != nil {
		t.Errorf("the lock is still held after the run: %v", err)
	}
}

func TestExistingUserJoinsExistingProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const (
		email       = "grace@example.org"
		oldPassword = "graces own password 1952"
		newcomer    = "linus@example.org" // row 3: no account yet
	)
	u := e.createUser(email, oldPassword)
	p := e.createProject("compilers") // not kaizen's: no owner tag
	before := e.quotaSet(p.ID)
	// The rows ask for a large preset: not theirs to set on a project they
	// join.
	e.write(
		row("Grace@Example.org", "compilers", cols.FirstName, "Grace", cols.LastName, "Hopper",
			cols.ExistingAccount, "yes", cols.ExistingProject, "yes", cols.QuotaPreset, "large", ramColumn, "64"),
		row(newcomer, "compilers", cols.Timestamp, "3/15/2026 08:00:00", cols.FirstName, "Linus", cols.LastName, "T",
			cols.PIN, "7310", cols.ExistingProject, "yes", cols.QuotaPreset, "large"),
	)

	start := time.Now()
	sum := e.mustRun()
	res := result(t, sum, 2)
	if res.Outcome != onboard.Updated || res.UserID != u.ID || res.ProjectID != p.ID {
		t.Fatalf("row 2 = %+v, want updated with the existing user and project", res)
	}
	if !hasChange(res, "assigned member", email) || len(res.Changes) != 1 {
		t.Errorf("changes %q, want only the role", res.Changes)
	}
	wantRoles(t, e, u.ID, p.ID)
	if ps, us := e.projects(), e.users(); len(ps) != 1 || len(us) != 2 {
		t.Errorf("projects %d, users %v; want the project and the two users", len(ps), names(us))
	}
	if got := e.quotaSet(p.ID); !maps.Equal(got, before) {
		t.Errorf("quotas of the joined project changed: %v, were %v", got, before)
	}
	if !e.authenticates(email, oldPassword) {
		t.Error("the user's own password no longer works")
	}

	added := e.oneMail(email, subjAdded)
	for _, s := range []string{"Hello Grace Hopper,", "account " + email + " has been added to",
		"the project compilers", `with the role "member"`, "Log in with your usual password"} {
		if !strings.Contains(strings.Join(strings.Fields(added.Text), " "), s) {
			t.Errorf("added-to-project text lacks %q:\n%s", s, added.Text)
		}
	}
	if ms := e.mailsTo(email, ""); len(ms) != 1 {
		t.Errorf("mail to the existing user: %v, want only added-to-project", ms)
	}
	e.wantStatusDone(2, u.ID, p.ID, start)

	// Row 3: a new user joining learns of the project from the welcome.
	n := e.user(newcomer)
	wantRoles(t, e, n.ID, p.ID)
	if r := result(t, sum, 3); r.Outcome != onboard.Created || r.ProjectID != p.ID {
		t.Errorf("row 3 = %+v", r)
	}
	w := e.oneMail(newcomer, subjWelcome)
	if !strings.Contains(w.Text, "Project:  compilers") {
		t.Errorf("welcome does not name the project:\n%s", w.Text)
	}
	if ms := e.mailsTo(newcomer, ""); len(ms) != 1 {
		t.Errorf("mail to the newcomer: %v, want only the welcome", ms)
	}
	e.completeLink(e.link(w), "7310", newPassword)
	if _, err := e.ks.AuthenticateUserInProject(t.Context(), e.domainID, newcomer, newPassword, p.ID); err != nil {
		t.Errorf("newcomer's token on the project: %v", err)
	}
	e.wantStatusDone(3, n.ID, p.ID, start)

	acts := actions(e.events())
	for action, want := range map[string]int{"role.assign": 2, "mail.queue": 2, "user.create": 1, "setpass.issue": 1} {
		if acts[action] != want {
			t.Errorf("%d %s events, want %d", acts[action], action, want)
		}
	}
	if acts["quota.set"] != 0 || acts["project.create"] != 0 {
		t.Errorf("audit actions %v", acts)
	}
}

func TestAdditionalUsers(t *testing.T) {
	t.Parallel()
	const (
		requester = "ada@example.org"
		bob       = "bob@example.org"
		bobPass   = "bobs own password 1234"
	)

	t.Run("create", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const charles = "charles.babbage@example.org"
		b := e.createUser(bob, bobPass)
		e.write(row(requester, "engines", cols.AdditionalUsers, "bob@example.org, Charles.Babbage@Example.org"))

		sum := e.mustRun()
		res := result(t, sum, 2)
		if res.Outcome != onboard.Created {
			t.Fatalf("row 2 = %+v", res)
		}
		p := e.project("engines")
		ada, c := e.user(requester), e.user(charles)
		if len(e.users()) != 3 {
			t.Errorf("users %v, want ada, bob and charles", names(e.users()))
		}
		for _, id := range []string{ada.ID, b.ID, c.ID} {
			wantRoles(t, e, id, p.ID)
		}
		if c.Extra[cloud.OwnerAttr] != requester || c.Extra["email"] != charles {
			t.Errorf("charles: owner %v, email %v", c.Extra[cloud.OwnerAttr], c.Extra["email"])
		}

		// Bob had an account: told he was added, nothing else.
		e.oneMail(bob, subjAdded)
		if len(e.mailsTo(bob, "")) != 1 || !e.authenticates(bob, bobPass) {
			t.Errorf("bob got %v, or lost his password", e.mailsTo(bob, ""))
		}
		// Charles is new: a welcome saying whose PIN it is, no added mail.
		w := e.oneMail(charles, subjWelcome)
		if len(e.mailsTo(charles, "")) != 1 {
			t.Errorf("charles got %v, want only the welcome", e.mailsTo(charles, ""))
		}
		// templates/welcome/body.txt, PINFrom set.
		text := strings.Join(strings.Fields(w.Text), " ")
		if !strings.Contains(text, "The page will ask for a 4-digit PIN: Ada Lovelace chose it when requesting the project, so ask them for it.") {
			t.Errorf("welcome does not say the requester chose the PIN:\n%s", w.Text)
		}
		if strings.Contains(text, "you chose on the sign-up form") {
			t.Errorf("welcome says charles chose the PIN:\n%s", w.Text)
		}
		if !strings.Contains(w.HTML, "<strong>Ada Lovelace chose it</strong>") {
			t.Errorf("HTML welcome does not name the requester:\n%s", w.HTML)
		}
		// The requester: welcome in her own words, and the new project.
		aw := e.oneMail(requester, subjWelcome)
		if !strings.Contains(aw.Text, "the 4-digit PIN you chose on the sign-up form") {
			t.Errorf("requester's welcome:\n%s", aw.Text)
		}
		e.oneMail(requester, subjProject)
		if n := len(e.mails()); n != 4 {
			t.Errorf("%d messages, want 4: %v", n, e.mails())
		}
		// Charles's link takes the requester's PIN.
		e.completeLink(e.link(w), defaultPIN, newPassword)
		if !e.authenticates(charles, newPassword) {
			t.Error("charles's new password is refused")
		}
	})

	t.Run("report", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const charles = "charles@example.org"
		b := e.createUser(bob, bobPass)
		e.write(row(requester, "engines", cols.AdditionalUsers, "bob@example.org charles@example.org"))

		sum, err := e.run(func(o *onboard.Options) { o.CreateAdditional = false })
		if !errors.Is(err, onboard.ErrSomeFailed) {
			t.Fatalf("Run error %v, want ErrSomeFailed", err)
		}
		res := result(t, sum, 2)
		if res.Outcome != onboard.Failed || !strings.Contains(res.Error, charles) || strings.Contains(res.Error, bob) {
			t.Fatalf("row 2 = %+v, want failed naming %s only", res, charles)
		}
		if !strings.HasPrefix(res.Error, cols.AdditionalUsers+": no account for "+charles) {
			t.Errorf("error %q, want it to start with the column %q", res.Error, cols.AdditionalUsers)
		}
		e.wantStatusError(2, charles)
		if got := e.cell(2, cols.PIN); got != defaultPIN {
			t.Errorf("PIN cell %q: the PIN must stay until the row is done", got)
		}
		for _, u := range e.users() {
			if u.Name == charles {
				t.Errorf("an account was created for %s", charles)
			}
		}
		if len(e.mailsTo(charles, "")) != 0 || len(e.queuedTo(charles)) != 0 {
			t.Errorf("mail for %s: %v", charles, e.mailsTo(charles, ""))
		}

		// Charles signs up; the re-run finishes the row without mailing
		// anyone twice.
		mailsBefore := len(e.mails())
		c := e.createUser(charles, "charles own password 1")
		sum = e.mustRun(func(o *onboard.Options) { o.CreateAdditional = false })
		if res := result(t, sum, 2); res.Outcome == onboard.Failed {
			t.Fatalf("re-run: %+v", res)
		}
		p := e.project("engines")
		for _, id := range []string{e.user(requester).ID, b.ID, c.ID} {
			wantRoles(t, e, id, p.ID)
		}
		e.oneMail(charles, subjAdded)
		if n := len(e.mails()); n != mailsBefore+1 {
			t.Errorf("re-run delivered %d messages, want 1 (charles's): %v", n-mailsBefore, e.mails())
		}
		if got := e.cell(2, cols.Status); got != signup.StatusDone {
			t.Errorf("Status %q after the re-run", got)
		}
	})
}

func (e *env) queuedTo(addr string) []string {
	var keys []string
	for _, m := range e.queued() {
		if slices.Contains(m.To, addr) {
			keys = append(keys, m.Key)
		}
	}
	return keys
}

// invalidCase is one row that must fail, and what its error must say.
type invalidCase struct {
	name       string
	row        formRow
	parts      []string // what the error must say, the field first
	mustNotSay string   // e.g. the PIN
}

// cloudNow is what the domain holds at one moment, for checkNothingFor.
type cloudNow struct {
	projects []projects.Project
	users    []users.User
	events   []store.Event
}

func (e *env) now() cloudNow { return cloudNow{e.projects(), e.users(), e.events()} }

// checkNothingFor checks that the cloud, the outbox and the audit trail
// (as in c) hold nothing for failed row n.
func (e *env) checkNothingFor(t *testing.T, n int, r formRow, c cloudNow) {
	t.Helper()
	e = e.in(t)
	email := strings.ToLower(strings.TrimSpace(r[cols.Email]))
	for _, p := range c.projects {
		if r[cols.ProjectName] != "" && strings.EqualFold(p.Name, r[cols.ProjectName]) {
			t.Errorf("project %q (%s) exists for the failed row", p.Name, p.ID)
		}
	}
	for _, u := range c.users {
		if u.Name == email {
			t.Errorf("user %q (%s) exists for the failed row", u.Name, u.ID)
		}
	}
	if keys := e.queuedTo(email); len(keys) != 0 {
		t.Errorf("mail queued for the failed row: %v", keys)
	}
	for _, ev := range c.events {
		if strings.Contains(ev.Source, " row "+strconv.Itoa(n)+" ") {
			t.Errorf("audit event for the failed row: %+v", ev)
		}
	}
}

// checkFailed checks row n's summary and Status against c.
func (e *env) checkFailed(t *testing.T, sum onboard.Summary, n int, c invalidCase) {
	t.Helper()
	e = e.in(t)
	res := result(t, sum, n)
	if res.Outcome != onboard.Failed {
		t.Fatalf("row %d = %+v, want failed", n, res)
	}
	for _, p := range c.parts {
		if !strings.Contains(res.Error, p) {
			t.Errorf("error %q does not mention %q", res.Error, p)
		}
	}
	e.wantStatusError(n, c.parts[0])
	if c.mustNotSay != "" && (strings.Contains(res.Error, c.mustNotSay) || strings.Contains(e.cell(n, cols.Status), c.mustNotSay)) {
		t.Errorf("the error shows %q", c.mustNotSay)
	}
	if res.WriteBack != "" {
		t.Errorf("write-back: %s", res.WriteBack)
	}
}

func TestInvalidRows(t *testing.T) {
	t.Parallel()
	// Each row has its own requester and project, so that what exists in
	// the cloud can be told apart by row.
	stamp := func(i int) string { return "3/14/2026 10:" + fmt.Sprintf("%02d", i) + ":00" }
	at := func(i int, r formRow) formRow { r[cols.Timestamp] = stamp(i); return r }

	t.Run("rejected before anything is created", func(t *testing.T) {
		t.Parallel()
		cases := []invalidCase{
			{name: "malformed email", row: row("ada@@example", "p1"),
				parts: []string{"Email", "is not an email address"}},
			{name: "email with a display name", row: row("Ada <u2@example.org>", "p2"),
				parts: []string{"Email", "is not an email address"}},
			{name: "PIN of 5 digits", row: row("u3@example.org", "p3", cols.PIN, "48213"),
				parts: []string{"PIN", "exactly 4 digits"}, mustNotSay: "48213"},
			{name: "PIN with a letter", row: row("u4@example.org", "p4", cols.PIN, "48a1"),
				parts: []string{"PIN", "exactly 4 digits"}, mustNotSay: "48a1"},
			{name: "project name empty", row: row("u5@example.org", ""),
				parts: []string{"Project Name", "required"}},
			{name: "project name of 65 characters", row: row("u6@example.org", strings.Repeat("p", 65)),
				parts: []string{"Project Name", "longer than 64"}},
			{name: "project name against the pattern", row: row("u7@example.org", "-p7/v2"),
				parts: []string{"Project Name", "does not match"}},
			{name: "unknown quota preset", row: row("u8@example.org", "p8", cols.QuotaPreset, "gigantic"),
				parts: []string{"Quota Preset", "gigantic", "not a quota preset"}},
			{name: "quota not an integer", row: row("u9@example.org", "p9", ramColumn, "lots"),
				parts: []string{ramColumn, "whole number"}},
			{name: "quota a fraction", row: row("u10@example.org", "p10", ramColumn, "1.5"),
				parts: []string{ramColumn, "whole number"}},
			{name: "quota negative", row: row("u11@example.org", "p11", ramColumn, "-4"),
				parts: []string{ramColumn, "whole number"}},
			{name: "existing project that does not exist", row: row("u12@example.org", "p12", cols.ExistingProject, "yes"),
				parts: []string{"Existing Project", `"p12" does not exist`}},
			// The same request again: the next row repeats row 14 (the
			// last case's row is the repeat).
			{name: "same request twice", row: row("U13@Example.org", "p13"),
				parts: []string{"Email", "already requested", "row 14"}},
		}
		e := newEnv(t)
		first := at(59, row("u13@example.org", "p13"))
		rows := make([]formRow, 0, len(cases)+1)
		for i, c := range cases[:len(cases)-1] {
			rows = append(rows, at(i, c.row))
		}
		rows = append(rows, first, at(len(cases), cases[len(cases)-1].row))
		e.write(rows...)
		sum, err := e.run()
		if !errors.Is(err, onboard.ErrSomeFailed) {
			t.Errorf("Run error %v, want ErrSomeFailed", err)
		}
		if sum.Counts[string(onboard.Failed)] != len(cases) {
			t.Errorf("counts %v, want %d failed", sum.Counts, len(cases))
		}
		// Row 14, the first of the repeated request, went through and is
		// all there is in the cloud.
		okRow := len(cases) + 1
		if r := result(t, sum, okRow); r.Outcome != onboard.Created {
			t.Fatalf("row %d = %+v, want created", okRow, r)
		}
		if ps, us := e.projects(), e.users(); len(ps) != 1 || ps[0].Name != "p13" || len(us) != 1 || us[0].Name != "u13@example.org" {
			t.Errorf("projects %v, users %v; want only row %d's", ps, names(us), okRow)
		}
		after := e.now()
		for i, c := range cases {
			n := i + 2
			if i == len(cases)-1 {
				n = okRow + 1
			}
			t.Run(c.name, func(t *testing.T) {
				e.checkFailed(t, sum, n, c)
				if i != len(cases)-1 {
					e.checkNothingFor(t, n, c.row, after)
				}
			})
		}
		if keys := e.queuedTo("u13@example.org"); len(keys) != 2 {
			t.Errorf("mail for u13: %v, want row %d's welcome and new-project", keys, okRow)
		}
	})

	// These rows pass the parser but name what the cloud or onboard does
	// not have.
	t.Run("rejected by onboard", func(t *testing.T) {
		t.Parallel()
		cases := []invalidCase{
			{name: "preset unknown to onboard", row: row("u1@example.org", "p1", cols.QuotaPreset, "gigantic"),
				parts: []string{"Quota Preset", "gigantic"}},
			{name: "existing account that does not exist", row: row("u2@example.org", "p2", cols.ExistingAccount, "yes"),
				parts: []string{"Existing Account", "u2@example.org"}},
		}
		e := newEnv(t)
		var rows []formRow
		for i, c := range cases {
			rows = append(rows, at(i, c.row))
		}
		e.write(rows...)
		sum, err := e.run(func(o *onboard.Options) { o.Request.Presets = nil })
		if !errors.Is(err, onboard.ErrSomeFailed) {
			t.Errorf("Run error %v, want ErrSomeFailed", err)
		}
		after := e.now()
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.checkFailed(t, sum, i+2, c)
				e.checkNothingFor(t, i+2, c.row, after)
			})
		}
	})
}

func TestRerunChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser("bob@example.org", "bobs own password 1234")
	e.createProject("shared")
	e.write(
		row("ada@example.org", "engines", cols.AdditionalUsers, "charles@example.org", cols.QuotaPreset, "large"),
		row("bob@example.org", "shared", cols.Timestamp, "3/15/2026 09:00:00", cols.FirstName, "Bob",
			cols.ExistingAccount, "yes", cols.ExistingProject, "yes"),
		row("dora@example.org", "mining", cols.Timestamp, "3/16/2026 09:00:00", cols.PIN, "12"),
		row("eve@example.org", "mining", cols.Timestamp, "3/17/2026 09:00:00", cols.Approved, ""), // not approved
	)
	first, err := e.run()
	if !errors.Is(err, onboard.ErrSomeFailed) {
		t.Fatalf("first run: %v, want ErrSomeFailed for row 4", err)
	}
	for _, n := range []int{2, 3} {
		if r := result(t, first, n); r.Outcome == onboard.Failed {
			t.Fatalf("first run, row %d: %+v", n, r)
		}
	}
	if first.Skipped != 1 || len(first.Rows) != 3 || e.cell(5, cols.Status) != "" || e.cell(5, cols.ProcessedAt) != "" {
		t.Errorf("first run: %d skipped, rows %+v; row 5 Status %q: want the unapproved row left alone",
			first.Skipped, first.Rows, e.cell(5, cols.Status))
	}

	e.counter.reset()
	sheetRequests, sheetWrites := len(e.sheets.Requests()), e.sheetWrites()
	mails, queued, events := len(e.mails()), len(e.queued()), len(e.events())
	grid := e.sheets.Rows(book, worksheet)
	nProjects, nUsers := len(e.projects()), len(e.users())

	// Row 4 is still invalid as reported: listed, but nothing new failed.
	second, err := e.run()
	if err != nil {
		t.Errorf("second run: %v, want no error (row 4 is still invalid, nothing new failed)", err)
	}
	for _, n := range []int{2, 3} {
		if r := result(t, second, n); r.Outcome != onboard.Unchanged {
			t.Errorf("second run, row %d: %+v, want unchanged", n, r)
		}
	}
	if r := result(t, second, 4); r.Outcome != onboard.StillInvalid || r.Error != result(t, first, 4).Error {
		t.Errorf("second run, row 4: %+v, want still invalid with the same reason", r)
	}
	if second.Mail != 0 {
		t.Errorf("second run queued %d messages", second.Mail)
	}
	if w := e.cloudWrites(); len(w) != 0 {
		t.Errorf("second run wrote to the cloud: %v", w)
	}
	if n := e.sheetWrites() - sheetWrites; n != 0 {
		t.Errorf("second run made %d sheet writes", n)
	}
	if n := len(e.sheets.Requests()) - sheetRequests; n > 2 { // a token exchange and the read, at most
		t.Errorf("second run made %d sheet requests: %v", n, e.sheets.Requests()[sheetRequests:])
	}
	if !slices.EqualFunc(grid, e.sheets.Rows(book, worksheet), slices.Equal) {
		t.Error("the sheet changed")
	}
	if len(e.mails()) != mails || len(e.queued()) != queued || len(e.events()) != events {
		t.Errorf("mail delivered %d→%d, queued %d→%d, events %d→%d", mails, len(e.mails()), queued, len(e.queued()), events, len(e.events()))
	}
	if len(e.projects()) != nProjects || len(e.users()) != nUsers {
		t.Error("projects or users changed")
	}

	t.Run("done rows are not judged again", func(t *testing.T) {
		e := e.in(t)
		e.counter.reset()
		writes := e.sheetWrites()
		third, err := e.run(func(o *onboard.Options) {
			o.Presets = map[string]map[string]int64{"small": presets["small"]}
			o.Request.Presets = []string{"small"}
		})
		if err != nil { // row 4 still invalid, as before
			t.Errorf("third run: %v", err)
		}
		if r := result(t, third, 2); r.Outcome != onboard.Unchanged {
			t.Errorf("row 2, done with a preset since retired: %+v, want unchanged", r)
		}
		if got := e.cell(2, cols.Status); got != signup.StatusDone {
			t.Errorf("row 2 Status = %q, want it to stay %q", got, signup.StatusDone)
		}
		if n := e.sheetWrites() - writes; n != 0 {
			t.Errorf("%d sheet writes", n)
		}
		if w := e.cloudWrites(); len(w) != 0 {
			t.Errorf("cloud writes: %v", w)
		}
	})
}

func TestCrashResume(t *testing.T) {
	t.Parallel()
	const email = "ada@example.org"

	t.Run("account created but never sent a link", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ctx := t.Context()
		const lost = "temporary password lost with the run"
		// What a run killed after its creates left: the project, with the
		// request's owner tag, and the account, marked as kaizen's.
		p, created, err := cloud.EnsureProject(ctx, e.ks.Identity, cloud.ProjectSpec{
			DomainID: e.domainID, Name: "engines", Owner: email, Tags: []string{"requested-" + defaultDate}})
		if err != nil || !created {
			t.Fatalf("EnsureProject: %v, %v", created, err)
		}
		u, created, err := cloud.EnsureUser(ctx, e.ks.Identity, cloud.UserSpec{
			DomainID: e.domainID, Name: email, Email: email, FullName: "Ada Lovelace", Password: lost,
			DefaultProjectID: p.ID, Owner: email})
		if err != nil || !created {
			t.Fatalf("EnsureUser: %v, %v", created, err)
		}
		e.write(row(email, "engines"))

		start := time.Now()
		sum := e.mustRun()
		res := result(t, sum, 2)
		if res.Outcome != onboard.Updated || res.UserID != u.ID || res.ProjectID != p.ID {
			t.Fatalf("row 2 = %+v, want updated, reusing %s and %s", res, u.ID, p.ID)
		}
		if len(e.projects()) != 1 || len(e.users()) != 1 {
			t.Fatalf("projects %d, users %v: something was duplicated", len(e.projects()), names(e.users()))
		}
		wantRoles(t, e, u.ID, p.ID)
		if got := e.quotaSet(p.ID); !maps.Equal(got, presets["small"]) {
			t.Errorf("quotas %v, want the preset", got)
		}
		if e.authenticates(email, lost) {
			t.Error("the lost temporary password still works: the account got no new one")
		}
		w := e.oneMail(email, subjWelcome)
		e.oneMail(email, subjProject)
		if n := len(e.mails()); n != 2 {
			t.Errorf("delivered %v", e.mails())
		}
		e.completeLink(e.link(w), defaultPIN, newPassword)
		if !e.authenticates(email, newPassword) {
			t.Error("the password set through the link is refused")
		}
		e.wantStatusDone(2, u.ID, p.ID, start)
		acts := actions(e.events())
		if acts["user.password.unused-reset"] != 1 || acts["setpass.issue"] != 1 || acts["user.create"] != 0 || acts["project.create"] != 0 {
			t.Errorf("audit actions %v", acts)
		}

		// The row is processed again (its Status cleared by hand): the
		// account is registered now, and is left alone.
		e.setCell(2, cols.Status, "")
		sum = e.mustRun()
		if res := result(t, sum, 2); res.Outcome == onboard.Failed || hasChange(res, "set-password link") {
			t.Errorf("re-run: %+v", res)
		}
		if n := len(e.mails()); n != 2 || sum.Mail != 0 {
			t.Errorf("re-run mailed again: %v", e.mails())
		}
		if !e.authenticates(email, newPassword) {
			t.Error("re-run changed the user's password")
		}
		if acts := actions(e.events()); acts["user.password.unused-reset"] != 1 || acts["setpass.issue"] != 1 {
			t.Errorf("re-run audit actions %v", acts)
		}
	})

	t.Run("project name taken", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		// Not kaizen's; and kaizen's, but for another request.
		plain := e.createProject("engines")
		others := e.createProject("compilers", cloud.KaizenTag, cloud.OwnerTag("grace@example.org"))
		e.write(row(email, "engines"),
			row("bob@example.org", "compilers", cols.Timestamp, "3/15/2026 09:00:00", cols.FirstName, "Bob"))
		before := map[string]map[string]int64{plain.ID: e.quotaSet(plain.ID), others.ID: e.quotaSet(others.ID)}

		sum, err := e.run()
		if !errors.Is(err, onboard.ErrSomeFailed) {
			t.Errorf("Run: %v, want ErrSomeFailed", err)
		}
		for n, name := range map[int]string{2: "engines", 3: "compilers"} {
			res := result(t, sum, n)
			if res.Outcome != onboard.Failed || !strings.Contains(res.Error, "taken") || !strings.Contains(res.Error, `"`+name+`"`) {
				t.Errorf("row %d = %+v, want failed: the name %q is taken", n, res, name)
			}
			e.wantStatusError(n, "taken")
		}
		if ps := e.projects(); len(ps) != 2 {
			t.Errorf("projects %v, want only the two there were", ps)
		}
		if us := e.users(); len(us) != 0 {
			t.Errorf("users %v, want none", names(us))
		}
		for id, q := range before {
			if got := e.quotaSet(id); !maps.Equal(got, q) {
				t.Errorf("quotas of %s changed: %v, were %v", id, got, q)
			}
			if roles := e.roleIDs("", id); len(roles) != 0 {
				t.Errorf("roles assigned on %s: %v", id, roles)
			}
		}
		if len(e.queued()) != 0 || len(e.events()) != 0 {
			t.Errorf("mail or events for failed rows: %v %v", e.queued(), e.events())
		}
	})
}

func TestPlanChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.createUser("bob@example.org", "bobs own password 1234")
	shared := e.createProject("shared")
	e.write(
		row("ada@example.org", "engines", cols.AdditionalUsers, "charles@example.org"),
		row("bob@example.org", "shared", cols.Timestamp, "3/15/2026 09:00:00", cols.FirstName, "Bob",
			cols.ExistingAccount, "yes", cols.ExistingProject, "yes"),
		// Joins the project row 2 is to create.
		row("dora@example.org", "engines", cols.Timestamp, "3/16/2026 09:00:00", cols.FirstName, "Dora",
			cols.ExistingProject, "yes"),
		row("eve@", "mining", cols.Timestamp, "3/17/2026 09:00:00"),
	)
	grid := e.sheets.Rows(book, worksheet)
	e.counter.reset()

	plan, err := e.run(func(o *onboard.Options) { o.DryRun = true })
	if !errors.Is(err, onboard.ErrSomeFailed) {
		t.Errorf("plan: %v, want ErrSomeFailed for row 5", err)
	}
	if !plan.DryRun || plan.Mail != 0 {
		t.Errorf("plan: dry run %v, mail %d", plan.DryRun, plan.Mail)
	}

	// Nothing changed anywhere.
	if w := e.cloudWrites(); len(w) != 0 {
		t.Errorf("plan wrote to the cloud: %v", w)
	}
	if n := e.sheetWrites(); n != 0 {
		t.Errorf("plan made %d sheet writes", n)
	}
	if !slices.EqualFunc(grid, e.sheets.Rows(book, worksheet), slices.Equal) {
		t.Error("plan changed the sheet")
	}
	if ps, us := e.projects(), e.users(); len(ps) != 1 || len(us) != 1 {
		t.Errorf("plan left projects %d, users %v", len(ps), names(us))
	}
	if got := e.roleIDs(bob.ID, shared.ID); len(got) != 0 {
		t.Errorf("plan assigned roles %v", got)
	}
	if q, m, ev := e.queued(), e.mails(), e.events(); len(q) != 0 || len(m) != 0 || len(ev) != 0 {
		t.Errorf("plan queued %d, delivered %d messages, recorded events %v", len(q), len(m), actions(ev))
	}

	// The summary tells what a run would do.
	wantChanges := map[int][][]string{
		2: {{"would create project", `"engines"`}, {"would create user", "ada@example.org"},
			{"would create user", "charles@example.org"}, {"would assign member to ada@example.org"},
			{"would assign member to charles@example.org"}, {"would set quotas", "cores=6", "ram=8192"},
			{"set-password link", "ada@example.org"}, {"set-password link", "charles@example.org"}},
		3: {{"would assign member to bob@example.org"}},
		4: {{"would create user", "dora@example.org"}, {"would assign member to dora@example.org"},
			{"set-password link", "dora@example.org"}},
	}
	wantOutcome := map[int]onboard.Outcome{2: onboard.Created, 3: onboard.Updated, 4: onboard.Created, 5: onboard.Failed}
	for n, out := range wantOutcome {
		res := result(t, plan, n)
		if res.Outcome != out {
			t.Errorf("plan row %d: %+v, want %s", n, res, out)
		}
		for _, c := range wantChanges[n] {
			if !hasChange(res, c...) {
				t.Errorf("plan row %d changes %q lack %q", n, res.Changes, c)
			}
		}
		if len(res.Changes) != len(wantChanges[n]) {
			t.Errorf("plan row %d: %d changes %q, want %d", n, len(res.Changes), res.Changes, len(wantChanges[n]))
		}
	}

	// And a run does what the plan said.
	done, err := e.run()
	if !errors.Is(err, onboard.ErrSomeFailed) {
		t.Errorf("run: %v", err)
	}
	for n, out := range wantOutcome {
		res := result(t, done, n)
		if res.Outcome != out || len(res.Changes) != len(result(t, plan, n).Changes) {
			t.Errorf("run row %d: %+v; plan said %+v", n, res, result(t, plan, n))
		}
	}
}

func TestLockHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.write(row("ada@example.org", "engines"))
	lockName := "addusers:" + e.opts.Source
	const other = "addusers/another-run"
	if err := e.store.AcquireLock(ctx, lockName, other, time.Now(), 10*time.Minute); err != nil {
		t.Fatalf("AcquireLock: %v", err)
	}
	e.counter.reset()

	sum, err := e.run()
	if !errors.Is(err, onboard.ErrLocked) {
		t.Fatalf("Run error %v, want ErrLocked", err)
	}
	if len(sum.Rows) != 0 || sum.Mail != 0 {
		t.Errorf("summary %+v", sum)
	}
	if w := e.cloudWrites(); len(w) != 0 {
		t.Errorf("wrote to the cloud: %v", w)
	}
	if n := e.sheetWrites(); n != 0 || e.cell(2, cols.Status) != "" {
		t.Errorf("%d sheet writes, Status %q", n, e.cell(2, cols.Status))
	}
	if len(e.projects()) != 0 || len(e.users()) != 0 || len(e.queued()) != 0 || len(e.events()) != 0 {
		t.Error("something was created")
	}

	// A plan does not need the lock.
	if _, err := e.run(func(o *onboard.Options) { o.DryRun = true }); err != nil {
		t.Errorf("plan while locked: %v", err)
	}
	// The lock is still the other run's.
	if err := e.store.AcquireLock(ctx, lockName, other, time.Now(), 10*time.Minute); err != nil {
		t.Errorf("the other run lost its lock: %v", err)
	}
	if err := e.store.ReleaseLock(ctx, lockName, other); err != nil {
		t.Fatal(err)
	}
	if res := result(t, e.mustRun(), 2); res.Outcome != onboard.Created {
		t.Errorf("once the lock is free: %+v", res)
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(
		row("ada@example.org", "engines"),
		row("bob@example.org", "compilers", cols.Timestamp, "3/15/2026 09:00:00", cols.FirstName, "Bob"),
		row("Carol@Example.org", "mining", cols.Timestamp, "3/16/2026 09:00:00", cols.FirstName, "Carol", cols.PIN, "1"),
	)
	// Steps run in order on the one sheet: each must take exactly its rows
	// and leave the others as they were.
	steps := []struct {
		name          string
		user, project string
		want          []int    // rows in the summary, all written back
		projects      []string // in the domain afterwards
	}{
		{name: "project names match exactly", project: "Engines"},
		{name: "user and project of different rows", user: "ada@example.org", project: "compilers"},
		{name: "user, any case", user: "BOB@example.org", want: []int{3}, projects: []string{"compilers"}},
		{name: "user and project", user: "ada@example.org", project: "engines", want: []int{2}, projects: []string{"compilers", "engines"}},
		{name: "invalid row of the user", user: "carol@example.org", want: []int{4}, projects: []string{"compilers", "engines"}},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			e := e.in(t)
			grid := e.sheets.Rows(book, worksheet)
			sum, err := e.run(func(o *onboard.Options) { o.OnlyUser, o.OnlyProject = st.user, st.project })
			if err != nil && !errors.Is(err, onboard.ErrSomeFailed) {
				t.Fatalf("Run: %v", err)
			}
			var got []int
			for _, r := range sum.Rows {
				got = append(got, r.Row)
			}
			if !slices.Equal(got, st.want) {
				t.Errorf("rows %v, want %v", got, st.want)
			}
			now := e.sheets.Rows(book, worksheet)
			for n := 2; n <= 4; n++ {
				changed := n-1 >= len(grid) || n-1 >= len(now) || !slices.Equal(grid[n-1], now[n-1])
				if changed != slices.Contains(st.want, n) {
					t.Errorf("row %d written %v (Status %q), want %v", n, changed, e.cell(n, cols.Status), !changed)
				}
			}
			var ps []string
			for _, p := range e.projects() {
				ps = append(ps, p.Name)
			}
			slices.Sort(ps)
			if !slices.Equal(ps, st.projects) {
				t.Errorf("projects %v, want %v", ps, st.projects)
			}
			if len(e.users()) != len(st.projects) {
				t.Errorf("users %v", names(e.users()))
			}
		})
		if !ok {
			break
		}
	}
}

// TestDomainManagerColumn: a Domain Manager cell of yes makes the requester
// the manager of the row's domain (a role on the domain, not the project).
func TestDomainManagerColumn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The role is global: a name of this test's own, removed afterwards.
	role := "kz-manager-" + strings.ToLower(strings.ReplaceAll(e.domain, "_", "-"))
	if len(role) > 60 {
		role = role[:60]
	}
	t.Cleanup(func() {
		if id, err := cloud.RoleID(context.Background(), e.ks.Identity, role); err == nil {
			roles.Delete(context.Background(), e.ks.Identity, id)
		}
	})
	withRole := func(o *onboard.Options) { o.ManagerRole = role }
	e.write(
		row("mgr@example.org", "tenant-lab", cols.DomainManager, "yes"),
		row("plain@example.org", "plain-lab", cols.Timestamp, "3/15/2026 09:00:00", cols.DomainManager, "no"),
	)

	plan, err := e.run(withRole, func(o *onboard.Options) { o.DryRun = true })
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if got := strings.Join(result(t, plan, 2).Changes, "; "); !strings.Contains(got, "would make mgr@example.org manager of domain") {
		t.Errorf("plan of row 2 = %q, want it to say the requester would become domain manager", got)
	}

	e.mustRun(withRole)
	id, err := cloud.RoleID(t.Context(), e.ks.Identity, role)
	if err != nil {
		t.Fatalf("the manager role was not created: %v", err)
	}
	for _, c := range []struct {
		user string
		want bool
	}{{"mgr@example.org", true}, {"plain@example.org", false}} {
		has, err := cloud.HasDomainRole(t.Context(), e.ks.Identity, e.user(c.user).ID, e.domainID, id)
		if err != nil || has != c.want {
			t.Errorf("%s manager of the domain = %v, %v; want %v", c.user, has, err, c.want)
		}
	}
	if ids := e.roleIDs(e.user("mgr@example.org").ID, e.project("tenant-lab").ID); slices.Contains(ids, id) {
		t.Errorf("the manager role was granted on the project too")
	}
	if sum := e.mustRun(withRole); sum.Counts[string(onboard.Unchanged)] != 2 {
		t.Errorf("re-run = %v, want both rows unchanged", sum.Counts)
	}
}
