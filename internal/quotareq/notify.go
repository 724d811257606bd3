package quotareq

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
)

// notify queues quota-changed, with the old-vs-new table, for every
// enabled member of the project (any role, directly, through a group or
// inherited) at the email attribute of their account, or their name when
// that is an address. Keys are <change key>:<user ID>, so a re-run queues
// nothing twice. It returns how many messages were queued now.
func (r *runner) notify(ctx context.Context, p cloud.Project, key string, changes []Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	ids, err := cloud.ProjectMembersOn(ctx, r.deps.Identity, p.ID)
	if err != nil {
		return 0, err
	}
	data := kmail.QuotaChangedData{Project: p.Name}
	for _, ch := range changes {
		data.Changes = append(data.Changes, kmail.QuotaChange{Resource: ch.Resource, Old: ch.Old, New: ch.New})
	}
	queued := 0
	for _, id := range ids {
		u, err := r.deps.Identity.GetUser(ctx, id)
		switch {
		case errors.Is(err, cloud.ErrNoUser):
			continue // deleted since the listing
		case err != nil:
			return queued, err
		case !u.Enabled:
			continue
		}
		addr := u.Email
		if addr == "" {
			addr = u.Name
		}
		to, err := netmail.ParseAddress(addr)
		if err != nil {
			r.opts.Logger.Warn("project member has no usable email address; not told of the quota change",
				"project", p.Name, "user_id", u.ID, "user", u.Name)
			continue
		}
		d := data
		d.Name = u.FullName
		if d.Name == "" {
			d.Name = u.Name
		}
		mkey := "quota-changed:" + key + ":" + u.ID
		_, created, err := r.deps.Mail.Queue(ctx, mkey, kmail.KindQuotaChanged, []netmail.Address{*to}, d)
		if err != nil {
			return queued, fmt.Errorf("queuing the quota-changed mail for %s: %w", to.Address, err)
		}
		if created {
			queued++
			r.audit(ctx, "mail.queue", u.ID, map[string]string{"kind": kmail.KindQuotaChanged, "key": mkey})
		}
	}
	return queued, nil
}
