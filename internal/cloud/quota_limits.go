package cloud

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/registeredlimits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Unified limits live in Keystone, keyed by project, service ID, region ID
// and resource name. Nova (since Yoga, with [quota]driver =
// nova.quota.UnifiedLimitsDriver) enforces them under its own resource
// names, below. Cinder and Neutron do not read unified limits as of Zed:
// for them the limits are recorded in Keystone under the preset keys'
// names, for whatever reads them, and enforce nothing.

// novaLimitNames maps the compute preset keys to Nova's unified-limits
// resource names.
var novaLimitNames = map[string]string{
	"instances":            "servers",
	"cores":                "class:VCPU",
	"ram":                  "class:MEMORY_MB",
	"key_pairs":            "server_key_pairs",
	"server_groups":        "server_groups",
	"server_group_members": "server_group_members",
	"metadata_items":       "server_metadata_items",
}

// limitResource is the unified-limits resource name of a preset key.
func limitResource(svc, key string) string {
	if svc == ServiceCompute {
		return novaLimitNames[key]
	}
	return key
}

// limitTarget is where a service's unified limits live in Keystone.
type limitTarget struct {
	serviceID   string
	serviceType string // the catalog type it was found under, for messages
	regionID    string // "" for an endpoint without a region
}

// findLimitTarget finds Keystone's ID of svc and the region of its
// endpoint, as oslo.limit does from the endpoint a service is configured
// with: limits must carry exactly that region, or the service does not see
// them. Block storage is looked for as "block-storage", then as
// "volumev3" (clouds often register both, as separate services). With no
// region configured the endpoint's own region is used, and endpoints in
// several regions are an error.
func findLimitTarget(ctx context.Context, identity *gophercloud.ServiceClient, svc string, eo gophercloud.EndpointOpts) (limitTarget, error) {
	types := []string{svc}
	if svc == ServiceBlockStorage {
		types = []string{"block-storage", "volumev3"}
	}
	for _, typ := range types {
		pages, err := services.List(identity, services.ListOpts{ServiceType: typ}).AllPages(ctx)
		if err != nil {
			return limitTarget{}, fmt.Errorf("%s quotas: listing %q services: %w", svc, typ, err)
		}
		all, err := services.ExtractServices(pages)
		if err != nil {
			return limitTarget{}, fmt.Errorf("%s quotas: listing %q services: %w", svc, typ, err)
		}
		var found []limitTarget
		for _, s := range all {
			if !s.Enabled || s.Type != typ {
				continue
			}
			pages, err := endpoints.List(identity, endpoints.ListOpts{ServiceID: s.ID, Availability: eo.Availability}).AllPages(ctx)
			if err != nil {
				return limitTarget{}, fmt.Errorf("%s quotas: listing the endpoints of service %s: %w", svc, s.ID, err)
			}
			eps, err := endpoints.ExtractEndpoints(pages)
			if err != nil {
				return limitTarget{}, fmt.Errorf("%s quotas: listing the endpoints of service %s: %w", svc, s.ID, err)
			}
			regions := map[string]bool{}
			for _, e := range eps {
				region := cmp.Or(e.RegionID, e.Region)
				// The catalog leaves disabled endpoints out.
				if e.Enabled && e.Availability == eo.Availability && (eo.Region == "" || region == eo.Region) {
					regions[region] = true
				}
			}
			for _, r := range slices.Sorted(maps.Keys(regions)) {
				found = append(found, limitTarget{serviceID: s.ID, serviceType: typ, regionID: r})
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		}
		var where []string
		for _, t := range found {
			where = append(where, fmt.Sprintf("service %s in region %q", t.serviceID, t.regionID))
		}
		return limitTarget{}, fmt.Errorf("%s quotas: several %q endpoints (interface %q) could hold unified limits: %s; set openstack.region, or disable the extra services",
			svc, typ, eo.Availability, strings.Join(where, ", "))
	}
	return limitTarget{}, missingService(svc, types, eo)
}

// newSystemIdentity returns an identity client whose token is the admin's
// token rescoped to the system. Keystone answers a project-scoped token's
// GET /v3/limits with that project's limits only, whatever project_id the
// query asks for, so reading another project's limits takes system scope
// (creating, updating and deleting them does not). The token is renewed,
// with the admin's own first if that has expired, when Keystone answers
// 401.
func newSystemIdentity(c *Clients) *gophercloud.ServiceClient {
	sys := &gophercloud.ProviderClient{
		IdentityBase:     c.Provider.IdentityBase,
		IdentityEndpoint: c.Provider.IdentityEndpoint,
		HTTPClient:       c.Provider.HTTPClient,
		UserAgent:        c.Provider.UserAgent,
		RetryFunc:        c.Provider.RetryFunc,
	}
	sys.UseTokenLock()
	// The rescoping POST goes through a client without a ReauthFunc, so
	// that its own 401 is not answered by calling the ReauthFunc again.
	rescoper := *c.Identity
	rescoper.ProviderClient = &gophercloud.ProviderClient{
		IdentityBase:     c.Provider.IdentityBase,
		IdentityEndpoint: c.Provider.IdentityEndpoint,
		HTTPClient:       c.Provider.HTTPClient,
		UserAgent:        c.Provider.UserAgent,
		RetryFunc:        c.Provider.RetryFunc,
	}
	rescope := func(ctx context.Context, token string) tokens.CreateResult {
		return tokens.Create(ctx, &rescoper, &tokens.AuthOptions{TokenID: token, Scope: tokens.Scope{System: true}})
	}
	sys.ReauthFunc = func(ctx context.Context) error {
		token := c.Provider.Token()
		r := rescope(ctx, token)
		// Keystone answers 404 (or 401) for an expired subject token.
		if isNotFound(r.Err) || gophercloud.ResponseCodeIs(r.Err, http.StatusUnauthorized) {
			if err := c.Provider.Reauthenticate(ctx, token); err != nil {
				return fmt.Errorf("renewing the admin token: %w", err)
			}
			r = rescope(ctx, c.Provider.Token())
		}
		if r.Err != nil {
			return fmt.Errorf("rescoping the admin token to the system, which reading other projects' unified limits needs"+
				" (the admin user needs a role on the system, e.g. `openstack role add --user <admin> --user-domain <domain> --system all reader`): %w", r.Err)
		}
		return sys.SetTokenAndAuthResult(r)
	}
	client := *c.Identity
	client.ProviderClient = sys
	return &client
}

// systemIdentity returns q.system with a token, rescoping if it has none.
func (q *Quotas) systemIdentity(ctx context.Context) (*gophercloud.ServiceClient, error) {
	if q.system.Token() == "" {
		if err := q.system.Reauthenticate(ctx, ""); err != nil {
			return nil, err
		}
	}
	return q.system, nil
}

// setLimits creates the project limits in one batch. Keystone creates all
// or none, and refuses the whole batch with 409 Conflict when any of them
// exists; only then are the project's limits read and reconciled.
func (q *Quotas) setLimits(ctx context.Context, svc, projectID string, want map[string]int) error {
	t := q.limits[svc]
	opts := make(limits.BatchCreateOpts, 0, len(want))
	for _, key := range slices.Sorted(maps.Keys(want)) {
		opts = append(opts, limits.CreateOpts{
			ProjectID:     projectID,
			ServiceID:     t.serviceID,
			RegionID:      t.regionID,
			ResourceName:  limitResource(svc, key),
			ResourceLimit: want[key],
		})
	}
	err := q.createLimits(ctx, svc, opts)
	if !isConflict(err) {
		return err
	}

	have, err := q.projectLimits(ctx, t, projectID)
	if err != nil {
		return fmt.Errorf("some limits exist already; reading them: %w", err)
	}
	var missing limits.BatchCreateOpts
	for _, o := range opts {
		l, ok := have[o.ResourceName]
		switch {
		case !ok:
			missing = append(missing, o)
		case l.ResourceLimit != o.ResourceLimit:
			v := o.ResourceLimit
			if err := limits.Update(ctx, q.identity, l.ID, limits.UpdateOpts{ResourceLimit: &v}).Err; err != nil {
				return fmt.Errorf("updating limit %s (%s) from %d to %d: %w", o.ResourceName, l.ID, l.ResourceLimit, v, err)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := q.createLimits(ctx, svc, missing); err != nil {
		// A conflict again means a concurrent writer; the caller may retry.
		return fmt.Errorf("creating the limits that did not exist yet: %w", err)
	}
	return nil
}

// createLimits is one batch create. Keystone's 403 for a limit without a
// registered limit does not say which resource lacks one, so on a 403 the
// registered limits are read to find out.
func (q *Quotas) createLimits(ctx context.Context, svc string, opts limits.BatchCreateOpts) error {
	err := limits.BatchCreate(ctx, q.identity, opts).Err
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		return err
	}
	t := q.limits[svc]
	registered, rerr := q.registeredLimits(ctx, t)
	if rerr != nil {
		return fmt.Errorf("%w (and reading the registered limits to explain it: %v)", err, rerr)
	}
	var missing []string
	for _, o := range opts {
		if _, ok := registered[o.ResourceName]; !ok {
			missing = append(missing, o.ResourceName)
		}
	}
	if len(missing) == 0 {
		return err // not about registered limits: the admin lacks a role, say
	}
	region := ""
	if t.regionID != "" {
		region = " --region " + t.regionID
	}
	return fmt.Errorf("%w for %s (service %s, type %q) in region %q: %s; Keystone refuses project limits without one:"+
		" create it first, e.g. `openstack registered limit create --service %s%s --default-limit N %s`: %w",
		ErrNoRegisteredLimit, svc, t.serviceID, t.serviceType, t.regionID, strings.Join(missing, ", "),
		t.serviceID, region, missing[0], err)
}

// projectLimits returns projectID's limits of t's service and region by
// resource name. One GET (after rescoping, the first time).
func (q *Quotas) projectLimits(ctx context.Context, t limitTarget, projectID string) (map[string]limits.Limit, error) {
	sys, err := q.systemIdentity(ctx)
	if err != nil {
		return nil, err
	}
	pages, err := limits.List(sys, limits.ListOpts{ProjectID: projectID, ServiceID: t.serviceID, RegionID: t.regionID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing limits: %w", err)
	}
	all, err := limits.ExtractLimits(pages)
	if err != nil {
		return nil, fmt.Errorf("listing limits: %w", err)
	}
	have := map[string]limits.Limit{}
	for _, l := range all {
		// The region filter is absent when regionID is "".
		if l.ProjectID == projectID && l.ServiceID == t.serviceID && l.RegionID == t.regionID {
			have[l.ResourceName] = l
		}
	}
	return have, nil
}

// registeredLimits returns the default limits of t's service and region by
// resource name. Registered limits are global, so the admin's own token
// reads them.
func (q *Quotas) registeredLimits(ctx context.Context, t limitTarget) (map[string]int, error) {
	pages, err := registeredlimits.List(q.identity, registeredlimits.ListOpts{ServiceID: t.serviceID, RegionID: t.regionID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing registered limits: %w", err)
	}
	all, err := registeredlimits.ExtractRegisteredLimits(pages)
	if err != nil {
		return nil, fmt.Errorf("listing registered limits: %w", err)
	}
	defaults := map[string]int{}
	for _, r := range all {
		if r.ServiceID == t.serviceID && r.RegionID == t.regionID {
			defaults[r.ResourceName] = r.DefaultLimit
		}
	}
	return defaults, nil
}

func (q *Quotas) getLimits(ctx context.Context, svc, projectID string) (map[string]int, error) {
	t := q.limits[svc]
	have, err := q.projectLimits(ctx, t, projectID)
	if err != nil {
		return nil, err
	}
	vals := map[string]int{}
	var unset []string
	for _, key := range config.QuotaKeys[svc] {
		if l, ok := have[limitResource(svc, key)]; ok {
			vals[key] = l.ResourceLimit
		} else {
			unset = append(unset, key)
		}
	}
	if len(unset) == 0 {
		return vals, nil
	}
	defaults, err := q.registeredLimits(ctx, t)
	if err != nil {
		return nil, err
	}
	for _, key := range unset {
		if d, ok := defaults[limitResource(svc, key)]; ok {
			vals[key] = d
		}
	}
	return vals, nil
}

// resetLimits deletes projectID's limits of the resources kaizen manages,
// leaving any others an operator set.
func (q *Quotas) resetLimits(ctx context.Context, svc, projectID string) error {
	have, err := q.projectLimits(ctx, q.limits[svc], projectID)
	if err != nil {
		return err
	}
	for _, key := range config.QuotaKeys[svc] {
		l, ok := have[limitResource(svc, key)]
		if !ok {
			continue
		}
		if err := limits.Delete(ctx, q.identity, l.ID).ExtractErr(); err != nil && !isNotFound(err) {
			return fmt.Errorf("deleting limit %s (%s): %w", l.ResourceName, l.ID, err)
		}
	}
	return nil
}
