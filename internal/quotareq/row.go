package quotareq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// refusal is a row the tool will not apply, for a reason the requester or
// an approver must fix; the row is finished ("refused: ...").
type refusal struct{ msg string }

func (r refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error { return refusal{fmt.Sprintf(format, args...)} }

// pending is a row that waits for a person's approval.
type pending struct{ msg string }

func (p pending) Error() string { return p.msg }

// change is what one row or revert will do once decided.
type change struct {
	project cloud.Project
	key     string
	rec     store.QuotaRecord  // the record to store
	old     *store.QuotaRecord // the record it replaces, nil for none
	apply   cloud.QuotaSet     // the values to write
	changes []Change
	action  string // audit action
	details map[string]string
	resumed bool // recorded by an earlier run: kept even if this one fails
}

// rowKey identifies a request row across runs: its sheet, timestamp,
// requester and project.
func rowKey(source string, q Request) string {
	sum := sha256.Sum256([]byte(source + "\x00" + strings.TrimSpace(q.ID.Timestamp) + "\x00" + q.Email + "\x00" + q.Project))
	return "quota-request:" + hex.EncodeToString(sum[:10])
}

// process decides one request and, unless this is a dry run, applies it.
func (r *runner) process(ctx context.Context, q Request) RowResult {
	res := RowResult{Row: q.Row, Email: q.Email, Project: q.Project}
	if q.Temporary {
		res.EndsOn = q.EndsOn.Format(time.DateOnly)
	}
	c, err := r.decide(ctx, q, &res)
	if err == nil && c == nil {
		res.Outcome = Unchanged
		res.Detail = "the project already has these quotas"
		return res
	}
	if err == nil {
		res.Changes = c.changes
		if r.opts.DryRun {
			res.Outcome, res.Detail = Applied, "would apply"
			return res
		}
		err = r.commit(ctx, c, &res)
	}
	var rf refusal
	var pd pending
	switch {
	case err == nil:
		res.Outcome = Applied
	case errors.As(err, &rf):
		res.Outcome, res.Detail = Refused, rf.msg
	case errors.As(err, &pd):
		res.Outcome, res.Detail = Pending, pd.msg
	default:
		res.Outcome, res.Detail = Failed, err.Error()
		r.opts.Logger.Error("quota request failed", "row", q.Row, "email", q.Email, "project", q.Project, "err", err)
	}
	return res
}

// decide finds the project, checks the requester and the approval and
// works out the change; nil, nil when there is nothing to change.
func (r *runner) decide(ctx context.Context, q Request, res *RowResult) (*change, error) {
	p, dir, err := r.project(ctx, q.Domain, q.Project)
	if err != nil {
		return nil, err
	}
	res.ProjectID = p.ID
	u, err := dir.User(q.Email)
	switch {
	case errors.Is(err, cloud.ErrNoUser):
		return nil, refuse("%s has no account in domain %q", q.Email, q.Domain)
	case err != nil:
		return nil, err
	}
	member, err := cloud.IsProjectMemberOn(ctx, r.deps.Identity, u.ID, p.ID)
	if err != nil {
		return nil, err
	}
	if !member {
		return nil, refuse("%s holds no role on project %q; only its members may ask for its quotas", q.Email, q.Project)
	}
	today := civilDate(r.opts.Now(), r.opts.Location)
	if q.Temporary && q.EndsOn.Before(today) {
		return nil, fmt.Errorf("%s: %s has passed; give a later last day", r.opts.Parse.Columns.EndDate, q.EndsOn.Format(time.DateOnly))
	}

	key := rowKey(r.opts.Source, q)
	old, err := r.record(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if old != nil && old.Change == key {
		// An earlier run stored this change and died before finishing it.
		res.Approval = "decided in an earlier run"
		return r.resume(p, key, *old, q), nil
	}

	current, err := r.deps.Quotas.Get(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	asked := map[string]int64{}
	maps.Copy(asked, r.opts.Rules.Presets[q.Preset])
	maps.Copy(asked, q.Quotas)
	var unmanaged []string
	for k := range asked {
		if _, ok := current[k]; !ok {
			unmanaged = append(unmanaged, k)
			delete(asked, k)
		}
	}
	if len(unmanaged) > 0 {
		r.opts.Logger.Warn("quota request asks for quotas of services kaizen does not manage; ignored", "row", q.Row, "quotas", unmanaged)
	}
	want := maps.Clone(asked)
	_, portInPreset := r.opts.Rules.Presets[q.Preset]["port"]
	_, portAsked := q.Quotas["port"]
	portRule(current, want, portAsked || portInPreset)

	var changes []Change
	for _, k := range cloud.QuotaSet(want).Keys() {
		if current[k] != want[k] {
			changes = append(changes, Change{Resource: k, Old: current[k], New: want[k]})
		}
	}
	extends := q.Temporary && old != nil && old.EndsOn != nil && !old.EndsOn.Equal(q.EndsOn)
	if len(changes) == 0 && !extends {
		return nil, nil
	}

	switch {
	case q.Approved:
		res.Approval = "sheet"
	case len(changes) == 0:
		return nil, pending{"a new end date for a temporary quota needs a person's approval"}
	default:
		last, err := r.lastChange(ctx, p.ID, old)
		if err != nil {
			return nil, err
		}
		d := r.opts.Rules.Decide(current, asked, last, r.opts.Now())
		if !d.Approved {
			return nil, pending{d.Reason}
		}
		res.Approval = d.Reason
	}

	rec := store.QuotaRecord{ProjectID: p.ID, Quotas: map[string]int64{}, Preset: q.Preset,
		ChangedAt: r.opts.Now().UTC(), Change: key, Before: map[string]int64(current)}
	if old != nil {
		maps.Copy(rec.Quotas, old.Quotas)
		if old.EndsOn != nil {
			end := *old.EndsOn
			rec.EndsOn, rec.Previous = &end, maps.Clone(old.Previous)
		}
	}
	maps.Copy(rec.Quotas, want)
	switch {
	case q.Temporary:
		// The first temporary change decides what the project returns to;
		// a later one (an extension, more) adds only what it changes anew.
		if rec.Previous == nil {
			rec.Previous = map[string]int64{}
		}
		for _, ch := range changes {
			if _, kept := rec.Previous[ch.Resource]; !kept {
				rec.Previous[ch.Resource] = ch.Old
			}
		}
		end := q.EndsOn
		rec.EndsOn = &end
	case rec.Previous != nil:
		// Permanent while a temporary quota runs: what it changes stays
		// after the end.
		for _, ch := range changes {
			if _, ok := rec.Previous[ch.Resource]; ok {
				rec.Previous[ch.Resource] = ch.New
			}
		}
	}
	apply := cloud.QuotaSet{}
	for _, ch := range changes {
		apply[ch.Resource] = ch.New
	}
	return &change{project: p, key: key, rec: rec, old: old, apply: apply, changes: changes,
		action: "quota.change", details: r.requestDetails(q, res.Approval)}, nil
}

// resume rebuilds the change an earlier run recorded under key.
func (r *runner) resume(p cloud.Project, key string, rec store.QuotaRecord, q Request) *change {
	var changes []Change
	apply := cloud.QuotaSet{}
	for _, k := range cloud.QuotaSet(rec.Quotas).Keys() {
		if b, ok := rec.Before[k]; ok && b != rec.Quotas[k] {
			changes = append(changes, Change{Resource: k, Old: b, New: rec.Quotas[k]})
			apply[k] = rec.Quotas[k]
		}
	}
	return &change{project: p, key: key, rec: rec, apply: apply, changes: changes, resumed: true,
		action: "quota.change", details: r.requestDetails(q, "decided in an earlier run")}
}

func (r *runner) requestDetails(q Request, approval string) map[string]string {
	d := map[string]string{"source": r.opts.Source, "row": fmt.Sprint(q.Row), "requester": q.Email, "approval": approval}
	if q.Preset != "" {
		d["preset"] = q.Preset
	}
	if q.Temporary {
		d["ends_on"] = q.EndsOn.Format(time.DateOnly)
	}
	return d
}

// commit stores the record, sets the quotas, tags a temporary quota and
// tells the members. The record goes first, holding the change's key and
// the quotas before it: a run that dies later finds it and finishes the
// change (see resume). If setting the quotas fails the old record is put
// back.
func (r *runner) commit(ctx context.Context, c *change, res *RowResult) error {
	if err := r.deps.Store.PutQuotaRecord(ctx, c.rec); err != nil {
		return err
	}
	if len(c.apply) > 0 {
		if _, err := r.deps.Quotas.Apply(ctx, c.project.ID, c.apply); err != nil {
			if !c.resumed {
				r.restore(ctx, c)
			}
			return err
		}
	}
	if c.rec.EndsOn != nil {
		if err := cloud.SetQuotaEndOn(ctx, r.deps.Identity, c.project.ID, c.project.Tags, *c.rec.EndsOn); err != nil {
			return err
		}
	}
	details := maps.Clone(c.details)
	for _, ch := range c.changes {
		details[ch.Resource] = fmt.Sprintf("%d -> %d", ch.Old, ch.New)
	}
	r.audit(ctx, c.action, c.project.ID, details)
	n, err := r.notify(ctx, c.project, c.key, c.changes)
	res.Mail = n
	return err
}

// restore puts back the record a failed change replaced, so that the row,
// retried (perhaps edited), is decided afresh and validate does not
// "repair" towards a change that never happened.
func (r *runner) restore(ctx context.Context, c *change) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if c.old != nil {
		err = r.deps.Store.PutQuotaRecord(ctx, *c.old)
	} else {
		err = r.deps.Store.DeleteQuotaRecord(ctx, c.project.ID)
	}
	if err != nil {
		r.opts.Logger.Error("putting back a project's quota record after a failed change; addusers validate may report drift",
			"project_id", c.project.ID, "err", err)
	}
}

// record returns the project's quota record, nil when there is none.
func (r *runner) record(ctx context.Context, projectID string) (*store.QuotaRecord, error) {
	rec, err := r.deps.Store.GetQuotaRecord(ctx, projectID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &rec, nil
}

// lastChange is when the project's quotas last changed as far as kaizen
// knows: its record, else a quota event of the audit trail within the
// auto-approval window; zero when neither says.
func (r *runner) lastChange(ctx context.Context, projectID string, rec *store.QuotaRecord) (time.Time, error) {
	if rec != nil {
		return rec.ChangedAt, nil
	}
	since := r.opts.Now().Add(-time.Duration(r.opts.Rules.Days) * 24 * time.Hour)
	evs, err := r.deps.Store.Events(ctx, since, projectID, 0)
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, e := range evs {
		if strings.HasPrefix(e.Action, "quota.") && e.At.After(last) {
			last = e.At
		}
	}
	return last, nil
}

// project finds a project by domain and name, refusing the row when
// either does not exist.
func (r *runner) project(ctx context.Context, domain, name string) (cloud.Project, *cloud.Directory, error) {
	id, ok := r.domains[domain]
	if !ok {
		d, err := r.deps.Identity.FindDomain(ctx, domain)
		switch {
		case errors.Is(err, cloud.ErrNoDomain):
		case err != nil:
			return cloud.Project{}, nil, err
		default:
			id = d.ID
		}
		r.domains[domain] = id
	}
	if id == "" {
		return cloud.Project{}, nil, refuse("no domain %q", domain)
	}
	dir, err := r.dirs.Get(ctx, id)
	if err != nil {
		return cloud.Project{}, nil, err
	}
	p, ok := dir.Project(name)
	if !ok {
		return cloud.Project{}, nil, refuse("no project %q in domain %q", name, domain)
	}
	return p, dir, nil
}

// civilDate is t's calendar date in loc, as midnight UTC.
func civilDate(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
