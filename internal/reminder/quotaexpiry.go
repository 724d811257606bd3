package reminder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"slices"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
)

// DefaultQuotaDaysBefore are the warnings' days before the end.
var DefaultQuotaDaysBefore = []int{30, 7, 1}

// ProjectLister lists the projects that carry a tag (Keystone GET
// /projects?tags=).
type ProjectLister interface {
	TaggedProjects(ctx context.Context, tag string) ([]cloud.Project, error)
}

// MemberLister lists the users holding any role on a project, through
// groups and inheritance too, each once (Keystone GET
// /role_assignments?scope.project.id=&effective).
type MemberLister interface {
	ProjectMembers(ctx context.Context, projectID string) (userIDs []string, err error)
}

// KeystoneProjects is the ProjectLister and MemberLister of a Keystone
// identity v3 admin client.
type KeystoneProjects struct {
	Identity *cloud.Keystone
	DomainID string // only this domain's projects; "" for every domain
}

// TaggedProjects is one GET /projects?tags=tag (gophercloud follows pages).
func (k KeystoneProjects) TaggedProjects(ctx context.Context, tag string) ([]cloud.Project, error) {
	return k.Identity.ListProjects(ctx, cloud.ProjectFilter{Tag: tag, DomainID: k.DomainID})
}

// ProjectMembers is one GET /role_assignments?scope.project.id=P&effective
// ([cloud.ProjectMembers]).
func (k KeystoneProjects) ProjectMembers(ctx context.Context, projectID string) ([]string, error) {
	return cloud.ProjectMembers(ctx, k.Identity.Client(), projectID)
}

// QuotaExpiryDeps is what a quota-expiry job needs.
type QuotaExpiryDeps struct {
	Projects ProjectLister
	Members  MemberLister
	Users    UserDirectory
	Ledger   Ledger
	Mail     Mailer
	// Helpdesk is told when a quota has ended, unless the job lists its
	// own addresses in to (mail.helpdesk).
	Helpdesk string
	// Location decides when a day begins (reminders.timezone); nil: UTC.
	Location *time.Location
}

type quotaExpiry struct {
	name     string
	days     []int // descending, distinct
	helpdesk []netmail.Address
	loc      *time.Location
	d        QuotaExpiryDeps
}

// NewQuotaExpiry builds a quota-expiry job. Projects tagged cloud.KaizenTag
// with a quota end date (QuotaEndTag; issue 8's `addusers quotas` writes
// it) get warnings and, once the date has passed, a helpdesk notice.
//
// Days are calendar days in Location; the end date is the quota's last day
// ("ends today" on it). On a run, with D days left until the end:
//
//   - D >= 0 and D <= some of j.DaysBefore (default 30, 7, 1): every enabled
//     user with a role on the project (effective assignments: groups and
//     inherited roles count) gets a QuotaExpiryData mail, once per threshold:
//     LedgerKey(job, project, "<end>-<n>d"). Only the nearest threshold due
//     is sent: after a gap (daemon down) the stale farther ones are skipped,
//     not sent late and all at once. A member added later still gets the
//     warning of the threshold the project is at, if that one is not yet
//     recorded.
//   - D < 0: the helpdesk (j.To, else Helpdesk) gets one notice to revert
//     the quota (`addusers quotas --revert-expired`):
//     LedgerKey(job, project, "<end>-ended"). Disabled projects get this
//     notice but no warnings.
//
// A changed end date has new keys, so an extended quota is warned about
// again. The ledger key is recorded before the mails are queued; if any
// queuing fails it is forgotten, so the next run retries. The members' mails
// have keys of their own, so those already queued are not sent twice.
func NewQuotaExpiry(j config.Job, d QuotaExpiryDeps) (Job, error) {
	switch {
	case d.Projects == nil || d.Members == nil || d.Users == nil || d.Ledger == nil || d.Mail == nil:
		return nil, fmt.Errorf("quota-expiry job %q: Projects, Members, Users, Ledger and Mail are required", j.Name)
	case j.Name == "":
		return nil, errors.New("quota-expiry job: a name is required")
	}
	qe := &quotaExpiry{name: j.Name, loc: d.Location, d: d}
	if qe.loc == nil {
		qe.loc = time.UTC
	}
	days := j.DaysBefore
	if len(days) == 0 {
		days = DefaultQuotaDaysBefore
	}
	for _, n := range days {
		if n < 0 {
			return nil, fmt.Errorf("quota-expiry job %q: days_before %d is negative", j.Name, n)
		}
		if !slices.Contains(qe.days, n) {
			qe.days = append(qe.days, n)
		}
	}
	slices.Sort(qe.days)
	slices.Reverse(qe.days)
	var err error
	if qe.helpdesk, err = helpdeskAddresses(j, d.Helpdesk); err != nil {
		return nil, fmt.Errorf("quota-expiry job %q: %w", j.Name, err)
	}
	return qe, nil
}

// civilDate is t's calendar date in loc, as midnight UTC.
func civilDate(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// nearestThreshold is the smallest configured day count at or above left,
// the warning due when left days remain; false when none is due.
func (qe *quotaExpiry) nearestThreshold(left int) (int, bool) {
	best, ok := 0, false
	for _, n := range qe.days { // descending
		if n >= left {
			best, ok = n, true
		}
	}
	return best, ok
}

func (qe *quotaExpiry) Run(ctx context.Context, rc RunContext) (Result, error) {
	log := rc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("job", qe.name)
	ps, err := qe.d.Projects.TaggedProjects(ctx, cloud.KaizenTag)
	if err != nil {
		return Result{}, fmt.Errorf("quota-expiry %s: %w", qe.name, err)
	}
	slices.SortFunc(ps, func(a, b cloud.Project) int { return strings.Compare(a.Name+"\x00"+a.ID, b.Name+"\x00"+b.ID) })
	today := civilDate(rc.Now, qe.loc)
	run := &quotaRun{qe: qe, rc: rc, log: log, users: map[string]userLookup{}}
	var errs []error
	n := 0
	for _, p := range ps {
		end, ok := cloud.QuotaEnd(p.Tags)
		if !ok {
			continue
		}
		n++
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		left := int(end.Sub(today) / (24 * time.Hour))
		var err error
		switch threshold, due := qe.nearestThreshold(left); {
		case left < 0:
			err = run.ended(ctx, p, end)
		case due && p.Enabled:
			err = run.warn(ctx, p, end, left, threshold)
		default:
			run.res.Skipped++
		}
		if err != nil {
			log.Error("quota-expiry failed for a project", "project", p.Name, "project_id", p.ID, "err", err)
			errs = append(errs, err)
		}
	}
	return run.res, summariseFailures("quota-expiry "+qe.name, n, errs)
}

type userLookup struct {
	u   UserInfo
	err error
}

// quotaRun is one run's state: users are looked up once per run.
type quotaRun struct {
	qe    *quotaExpiry
	rc    RunContext
	log   *slog.Logger
	users map[string]userLookup
	res   Result
}

func (r *quotaRun) user(ctx context.Context, id string) (UserInfo, error) {
	if l, ok := r.users[id]; ok {
		return l.u, l.err
	}
	u, err := r.qe.d.Users.User(ctx, id)
	r.users[id] = userLookup{u, err}
	return u, err
}

func (r *quotaRun) warn(ctx context.Context, p cloud.Project, end time.Time, left, threshold int) error {
	qe := r.qe
	endS := end.Format(time.DateOnly)
	key := LedgerKey(qe.name, p.ID, fmt.Sprintf("%s-%dd", endS, threshold))
	if _, done, err := qe.d.Ledger.Recorded(ctx, key); err != nil {
		return fmt.Errorf("project %s: %w", p.Name, err)
	} else if done {
		r.res.Skipped++
		return nil
	}
	ids, err := qe.d.Members.ProjectMembers(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("project %s: %w", p.Name, err)
	}
	type recipient struct {
		u  UserInfo
		to netmail.Address
	}
	var rcpts []recipient
	for _, id := range ids {
		u, err := r.user(ctx, id)
		switch {
		case errors.Is(err, ErrNoUser):
			continue // deleted since the listing
		case err != nil:
			return fmt.Errorf("project %s: %w", p.Name, err)
		case !u.Enabled:
			continue
		}
		addr := u.Email
		if addr == "" {
			addr = u.Name
		}
		a, err := netmail.ParseAddress(addr)
		if err != nil {
			r.log.Warn("project member has no usable email address; not warned", "project", p.Name, "user_id", id, "user", u.Name)
			continue
		}
		if a.Name == "" {
			a.Name = u.FullName
		}
		rcpts = append(rcpts, recipient{u, *a})
	}
	slices.SortFunc(rcpts, func(a, b recipient) int { return strings.Compare(a.to.Address, b.to.Address) })
	if len(rcpts) == 0 {
		// Not recorded: a member added before the next run is still warned.
		r.log.Warn("project quota ends soon but no member can be mailed", "project", p.Name, "project_id", p.ID, "ends", endS)
		r.res.Skipped++
		return nil
	}
	what := fmt.Sprintf("%s ends %s (%d %s left, %d-day warning)", p.Name, endS, left, quotaPlural(left, "day", "days"), threshold)
	if r.rc.DryRun {
		for _, rc := range rcpts {
			r.res.Sent++
			r.res.Lines = append(r.res.Lines, fmt.Sprintf("would warn %s: %s", rc.to.Address, what))
		}
		return nil
	}
	if fresh, err := qe.d.Ledger.RecordOnce(ctx, key, r.rc.Now); err != nil {
		return fmt.Errorf("project %s: %w", p.Name, err)
	} else if !fresh {
		r.res.Skipped++
		return nil
	}
	for _, rc := range rcpts {
		data := kmail.QuotaExpiryData{Name: userDisplayName(rc.u), Project: p.Name, EndsOn: end, DaysLeft: left}
		_, created, err := qe.d.Mail.Queue(ctx, key+":"+rc.u.ID, kmail.KindQuotaExpiry, []netmail.Address{rc.to}, data)
		if err != nil {
			r.forget(ctx, key)
			return fmt.Errorf("warning %s about project %s: %w", rc.to.Address, p.Name, err)
		}
		if created {
			r.res.Sent++
			r.res.Lines = append(r.res.Lines, fmt.Sprintf("warned %s: %s", rc.to.Address, what))
		}
	}
	return nil
}

func (r *quotaRun) ended(ctx context.Context, p cloud.Project, end time.Time) error {
	qe := r.qe
	endS := end.Format(time.DateOnly)
	key := LedgerKey(qe.name, p.ID, endS+"-ended")
	if _, done, err := qe.d.Ledger.Recorded(ctx, key); err != nil {
		return fmt.Errorf("project %s: %w", p.Name, err)
	} else if done {
		r.res.Skipped++
		return nil
	}
	helpdesk := addressList(qe.helpdesk)
	if r.rc.DryRun {
		r.res.Sent++
		r.res.Lines = append(r.res.Lines, fmt.Sprintf("would tell %s that the temporary quota of %s ended on %s", helpdesk, p.Name, endS))
		return nil
	}
	if fresh, err := qe.d.Ledger.RecordOnce(ctx, key, r.rc.Now); err != nil {
		return fmt.Errorf("project %s: %w", p.Name, err)
	} else if !fresh {
		r.res.Skipped++
		return nil
	}
	data := kmail.HelpdeskNotifyData{
		Summary: fmt.Sprintf("the temporary quota of %s ended on %s", p.Name, endS),
		Detail: fmt.Sprintf("Project %s (%s) still has its temporary quota. Revert it with `addusers quotas --revert-expired`, "+
			"or extend it by replacing the project's %s tag.", p.Name, p.ID, cloud.QuotaEndTag(end)),
		Items: []kmail.HelpdeskItem{{Project: p.Name, Problem: "temporary quota ended on " + endS}},
	}
	_, created, err := qe.d.Mail.Queue(ctx, key, kmail.KindHelpdeskNotify, qe.helpdesk, data)
	if err != nil {
		r.forget(ctx, key)
		return fmt.Errorf("telling the helpdesk that %s ended: %w", p.Name, err)
	}
	if created {
		r.res.Sent++
		r.res.Lines = append(r.res.Lines, fmt.Sprintf("told %s that the temporary quota of %s ended on %s", helpdesk, p.Name, endS))
	}
	return nil
}

func (r *quotaRun) forget(ctx context.Context, key string) {
	if err := r.qe.d.Ledger.Forget(context.WithoutCancel(ctx), key); err != nil {
		r.log.Error("could not forget a ledger key; that warning will not be retried", "key", key, "err", err)
	}
}

func quotaPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
