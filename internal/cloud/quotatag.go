package cloud

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// A temporary quota's last day is a fact about the project, kept as a
// project tag where both addusers (which sets and reverts temporary quotas)
// and the reminders daemon (which warns before the end) can read it.

// QuotaEndTagPrefix starts the project tag holding the last day of a
// temporary quota: "quota-ends-2026-09-30" (21 characters, within
// [MaxTagLen]).
const QuotaEndTagPrefix = "quota-ends-"

// QuotaEndTag is the tag that records end as a project's quota end date.
// Only end's calendar date (in end's location) counts.
func QuotaEndTag(end time.Time) string {
	return QuotaEndTagPrefix + end.Format(time.DateOnly)
}

// ParseQuotaEndTag reads a tag written by QuotaEndTag. It returns the date
// at midnight UTC, and false for any other tag or a malformed date.
func ParseQuotaEndTag(tag string) (time.Time, bool) {
	s, ok := strings.CutPrefix(tag, QuotaEndTagPrefix)
	if !ok {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil || d.Format(time.DateOnly) != s {
		return time.Time{}, false
	}
	return d, true
}

// QuotaEnd is a project's quota end date from its tags: the latest date
// when there are several (an extension adds a later tag).
func QuotaEnd(tags []string) (time.Time, bool) {
	var end time.Time
	found := false
	for _, t := range tags {
		if d, ok := ParseQuotaEndTag(t); ok && (!found || d.After(end)) {
			end, found = d, true
		}
	}
	return end, found
}

// AddProjectTag adds one tag to a project (PUT /v3/projects/P/tags/T, which
// leaves the other tags alone). Keystone refuses (400) a tag the project
// has already. One API call.
func AddProjectTag(ctx context.Context, c *gophercloud.ServiceClient, projectID, tag string) error {
	return NewKeystone(c).AddProjectTag(ctx, projectID, tag)
}

// RemoveProjectTag removes one tag from a project (DELETE
// /v3/projects/P/tags/T); a tag that is not there is no error. One API
// call.
func RemoveProjectTag(ctx context.Context, c *gophercloud.ServiceClient, projectID, tag string) error {
	return NewKeystone(c).RemoveProjectTag(ctx, projectID, tag)
}

// SetQuotaEnd is [Ops.SetQuotaEnd] on Keystone c.
func SetQuotaEnd(ctx context.Context, c *gophercloud.ServiceClient, projectID string, tags []string, end time.Time) error {
	return ops(c).SetQuotaEnd(ctx, projectID, tags, end)
}

// SetQuotaEnd makes end the project's only quota end tag: the tag is added
// first, then any other quota-ends- tag among tags (the project's current
// tags) is removed, so the project is never without an end date in
// between; an end tag already among tags is not added again. API calls:
// one (none when tags holds it already), plus one per other end tag.
func (o Ops) SetQuotaEnd(ctx context.Context, projectID string, tags []string, end time.Time) error {
	return SetQuotaEndOn(ctx, o, projectID, tags, end)
}

// ProjectTagger adds and removes project tags ([Projects]).
type ProjectTagger interface {
	AddProjectTag(ctx context.Context, projectID, tag string) error
	RemoveProjectTag(ctx context.Context, projectID, tag string) error
}

// SetQuotaEndOn is [Ops.SetQuotaEnd] for a consumer holding only the
// tagging.
func SetQuotaEndOn(ctx context.Context, o ProjectTagger, projectID string, tags []string, end time.Time) error {
	want := QuotaEndTag(end)
	// Only when missing: Keystone refuses to add a tag the project has.
	if !slices.Contains(tags, want) {
		if err := o.AddProjectTag(ctx, projectID, want); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if _, ok := ParseQuotaEndTag(t); ok && t != want {
			if err := o.RemoveProjectTag(ctx, projectID, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// ClearQuotaEnd is [Ops.ClearQuotaEnd] on Keystone c.
func ClearQuotaEnd(ctx context.Context, c *gophercloud.ServiceClient, projectID string, tags []string) error {
	return ops(c).ClearQuotaEnd(ctx, projectID, tags)
}

// ClearQuotaEnd removes every quota-ends- tag among tags (the project's
// current tags). One API call per tag removed.
func (o Ops) ClearQuotaEnd(ctx context.Context, projectID string, tags []string) error {
	return ClearQuotaEndOn(ctx, o, projectID, tags)
}

// ClearQuotaEndOn is [Ops.ClearQuotaEnd] for a consumer holding only the
// tagging.
func ClearQuotaEndOn(ctx context.Context, o ProjectTagger, projectID string, tags []string) error {
	for _, t := range tags {
		if _, ok := ParseQuotaEndTag(t); ok {
			if err := o.RemoveProjectTag(ctx, projectID, t); err != nil {
				return err
			}
		}
	}
	return nil
}
