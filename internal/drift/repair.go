package drift

import (
	"context"
	"fmt"
	"strconv"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
)

// assign repairs a missing role assignment (an idempotent PUT).
func (c *checker) assign(ctx context.Context, d *Drift, u cloud.User, p cloud.Project, role string) {
	err := c.deps.Identity.AssignRole(ctx, cloud.Grant{UserID: u.ID, RoleID: c.roleIDs[role], ProjectID: p.ID})
	if err != nil {
		d.RepairError = fmt.Sprintf("assigning %s to %s: %v", role, u.Name, err)
		return
	}
	d.Repaired = true
	c.audit(ctx, "repair.role.assign", p.ID, map[string]string{"role": role, "user": u.ID, "user_name": u.Name, "row": strconv.Itoa(d.Row)})
}

// setQuotas repairs drifted quotas in one write per service; the drift at
// indexes found is marked repaired, or given the error.
func (c *checker) setQuotas(ctx context.Context, pr *project, fix cloud.QuotaSet, found []int) {
	_, err := c.deps.Quotas.Apply(ctx, pr.p.ID, fix)
	details := map[string]string{}
	for _, i := range found {
		d := &c.rep.Drift[i]
		if err != nil {
			d.RepairError = err.Error()
			continue
		}
		d.Repaired = true
		details[d.Resource] = fmt.Sprintf("%d -> %d", *d.Got, *d.Want)
	}
	if err == nil {
		c.audit(ctx, "repair.quota.set", pr.p.ID, details)
	}
}

// audit records one repair (account.Recorder: a failing write is logged,
// not fatal).
func (c *checker) audit(ctx context.Context, action, target string, details map[string]string) {
	account.NewRecorder(c.deps.Store, c.opts.Logger, c.opts.Actor, "validate "+c.opts.Source, c.opts.Now).Record(ctx, action, target, details)
}
