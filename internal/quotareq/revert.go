package quotareq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// RevertExpired returns every project whose temporary quota has ended
// (its last day is before today in opts.Location) to the quotas recorded
// before it: the quotas are set, the project's quota-ends- tags removed,
// the members mailed the old-vs-new table, the change audited
// (quota.revert), and last the store record made permanent. A run that
// dies part-way finds the record still temporary and does it all again;
// every step is idempotent.
//
// A project whose quota-ends- tag is later than its record's end (the tag
// replaced by hand, as the quota-expiry notice offers) is not reverted:
// its record takes the tag's date. Projects tagged kaizen whose
// quota-ends- tag has passed but that have no temporary record (the tag
// set by hand, or before kaizen kept records) cannot be reverted: they are
// reported as failed, for a person.
func RevertExpired(ctx context.Context, deps Deps, opts Options) (Summary, error) {
	opts.defaults()
	sum, locked, release, err := start(ctx, deps, opts, false)
	if err != nil {
		return sum, err
	}
	defer release()
	r := newRunner(deps, opts)
	today := civilDate(opts.Now(), opts.Location)
	recs, err := deps.Store.EndedQuotaRecords(ctx, today)
	if err != nil {
		return sum, err
	}
	seen := map[string]bool{}
	var unstarted []string
	for _, rec := range recs {
		// As in Run: a revert in flight finishes on ctx; none starts once
		// the lock is lost.
		if locked.Err() != nil {
			sum.add(RowResult{ProjectID: rec.ProjectID, Project: rec.ProjectID, EndsOn: rec.EndsOn.Format(time.DateOnly),
				Outcome: NotProcessed, Detail: "not processed: the run stopped (" + context.Cause(locked).Error() + ")"})
			unstarted = append(unstarted, "project "+rec.ProjectID)
			continue
		}
		seen[rec.ProjectID] = true
		sum.add(r.revert(ctx, rec, today))
	}
	if locked.Err() == nil {
		if err := r.untracked(ctx, today, seen, &sum); err != nil {
			return sum, err
		}
	} else {
		unstarted = append(unstarted, "the search for expired projects without a record")
	}
	sum.Ended = opts.Now().UTC()
	if err := stopped(locked, unstarted, &sum); err != nil {
		return sum, err
	}
	if sum.Counts[string(Failed)] > 0 {
		return sum, ErrSomeFailed
	}
	return sum, nil
}

func (r *runner) revert(ctx context.Context, rec store.QuotaRecord, today time.Time) RowResult {
	res := RowResult{ProjectID: rec.ProjectID, Project: rec.ProjectID, EndsOn: rec.EndsOn.Format(time.DateOnly)}
	fail := func(err error) RowResult {
		res.Outcome, res.Detail = Failed, err.Error()
		r.opts.Logger.Error("reverting a temporary quota failed", "project_id", rec.ProjectID, "err", err)
		return res
	}
	p, err := r.deps.Identity.GetProject(ctx, rec.ProjectID)
	switch {
	case errors.Is(err, cloud.ErrNotFound):
		res.Outcome, res.Detail = Unchanged, "the project no longer exists; its quota record is removed"
		if !r.opts.DryRun {
			if err := r.deps.Store.DeleteQuotaRecord(ctx, rec.ProjectID); err != nil {
				return fail(err)
			}
		}
		return res
	case err != nil:
		return fail(err)
	}
	res.Project = p.Name
	if end, ok := cloud.QuotaEnd(p.Tags); ok && end.After(*rec.EndsOn) && !end.Before(today) {
		// Extended by hand, as the quota-expiry notice offers: the tag's
		// later date wins.
		res.Outcome, res.EndsOn = Unchanged, end.Format(time.DateOnly)
		res.Detail = "extended by its " + cloud.QuotaEndTag(end) + " tag; the record now ends then too"
		if !r.opts.DryRun {
			rec.EndsOn = &end
			if err := r.deps.Store.PutQuotaRecord(ctx, rec); err != nil {
				return fail(err)
			}
			r.audit(ctx, "quota.extend", p.ID, map[string]string{"ends_on": res.EndsOn, "by": "tag"})
		}
		return res
	}
	for _, k := range cloud.QuotaSet(rec.Previous).Keys() {
		if old := rec.Quotas[k]; old != rec.Previous[k] {
			res.Changes = append(res.Changes, Change{Resource: k, Old: old, New: rec.Previous[k]})
		}
	}
	res.Outcome = Reverted
	if r.opts.DryRun {
		res.Detail = "would revert"
		return res
	}
	key := "quota-revert:" + rec.ProjectID + ":" + res.EndsOn
	if _, err := r.deps.Quotas.Apply(ctx, p.ID, cloud.QuotaSet(rec.Previous)); err != nil {
		return fail(err)
	}
	if err := cloud.ClearQuotaEndOn(ctx, r.deps.Identity, p.ID, p.Tags); err != nil {
		return fail(err)
	}
	details := map[string]string{"ended_on": res.EndsOn, "change": rec.Change}
	for _, ch := range res.Changes {
		details[ch.Resource] = fmt.Sprintf("%d -> %d", ch.Old, ch.New)
	}
	r.audit(ctx, "quota.revert", p.ID, details)
	n, err := r.notify(ctx, p, key, res.Changes)
	res.Mail = n
	if err != nil {
		return fail(err)
	}
	next := store.QuotaRecord{ProjectID: p.ID, Quotas: maps.Clone(rec.Quotas), ChangedAt: r.opts.Now().UTC(),
		Change: key, Before: rec.Quotas}
	maps.Copy(next.Quotas, rec.Previous)
	if err := r.deps.Store.PutQuotaRecord(ctx, next); err != nil {
		return fail(err)
	}
	return res
}

// untracked reports kaizen projects whose end tag has passed with no
// temporary record to revert them by.
func (r *runner) untracked(ctx context.Context, today time.Time, seen map[string]bool, sum *Summary) error {
	ps, err := r.deps.Identity.ListProjects(ctx, cloud.ProjectFilter{Tag: cloud.KaizenTag, DomainID: r.opts.DomainID})
	if err != nil {
		return fmt.Errorf("listing kaizen's projects: %w", err)
	}
	for _, p := range ps {
		end, ok := cloud.QuotaEnd(p.Tags)
		if !ok || !end.Before(today) || seen[p.ID] {
			continue
		}
		rec, err := r.record(ctx, p.ID)
		if err != nil {
			return err
		}
		if rec != nil && rec.EndsOn != nil {
			continue // its record ends later: an extension the tag has not caught up with
		}
		sum.add(RowResult{Project: p.Name, ProjectID: p.ID, Outcome: Failed, EndsOn: end.Format(time.DateOnly),
			Detail: fmt.Sprintf("the temporary quota ended on %s, but kaizen has no record of the quotas before it; set them by hand and remove the tag %s",
				end.Format(time.DateOnly), cloud.QuotaEndTag(end))})
	}
	return nil
}
