package cloud

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	bsquotas "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	netquotas "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Services and methods: the keys and values of the config's [quotas.services].
const (
	ServiceCompute      = "compute"
	ServiceBlockStorage = "block-storage"
	ServiceNetwork      = "network"

	// MethodQuotaSets writes each service's own quota API (Nova and Cinder
	// os-quota-sets, Neutron quotas).
	MethodQuotaSets = "quota-sets"
	// MethodUnifiedLimits writes project limits in Keystone.
	MethodUnifiedLimits = "unified-limits"
	// MethodNone leaves the service's quotas alone.
	MethodNone = "none"
)

// QuotaSet holds quota values by preset key (the names of
// [config.QuotaKeys]: "cores", "ram" in MiB, "gigabytes" in GiB, "network",
// "port", ...); -1 means unlimited.
type QuotaSet map[string]int64

// Keys lists q's keys in reading order, for people: compute, block
// storage, network, each in config.QuotaKeys order. Keys of no service
// are left out.
func (q QuotaSet) Keys() []string {
	var out []string
	for _, svc := range []string{ServiceCompute, ServiceBlockStorage, ServiceNetwork} {
		for _, k := range config.QuotaKeys[svc] {
			if _, ok := q[k]; ok {
				out = append(out, k)
			}
		}
	}
	return out
}

// Sentinel errors of the quota layer; test with errors.Is.
var (
	// ErrServiceMissing: a configured quota service has no endpoint in the
	// catalog.
	ErrServiceMissing = errors.New("service has no endpoint in the catalog")
	// ErrUnknownQuota: a key that is not in config.QuotaKeys.
	ErrUnknownQuota = errors.New("unknown quota")
	// ErrNoRegisteredLimit: Keystone refused a project limit because no
	// registered limit exists for its service, region and resource.
	ErrNoRegisteredLimit = errors.New("no registered limit")
)

// Quotas sets and reads project quotas, per service, by the configured
// method. It is safe for concurrent use.
type Quotas struct {
	// methods holds every configured service, MethodNone included.
	methods map[string]string
	// sets holds the service client of each quota-sets service.
	sets map[string]*gophercloud.ServiceClient
	// limits holds where each unified-limits service's limits live.
	limits map[string]limitTarget
	// identity writes unified limits with the admin's own token.
	identity *gophercloud.ServiceClient
	// system reads unified limits; nil when no service uses them. See
	// newSystemIdentity.
	system *gophercloud.ServiceClient
}

// NewQuotas resolves, once, what each configured service needs: a service
// client from the catalog for quota-sets; for unified-limits, Keystone's ID
// of the service and the region of its endpoint (see findLimitTarget).
// Endpoints are looked up in c.Endpoint's region and interface (public when
// unset). An empty region accepts any: gophercloud takes the first
// endpoint found, and unified limits take the region of the service's
// endpoint, several being an error. A configured service without an
// endpoint is an error wrapping [ErrServiceMissing] naming the service, the
// catalog types looked for, the region and the interface. Services absent
// from services or set to "none" are ignored; an unknown service or method
// is an error.
//
// Writing needs the admin role. Reading unified limits (Get, Reset, and
// Apply when some limits exist) needs a role on the system as well, e.g.
// reader, because Keystone shows a project-scoped token no other project's
// limits: when any service uses unified limits, NewQuotas rescopes the
// admin's token to the system, and fails if Keystone refuses.
//
// API calls: quota-sets, gophercloud's version discovery of the endpoint;
// unified-limits, one rescoping, one services list per catalog type tried
// and one endpoints list per service found.
func NewQuotas(ctx context.Context, c *Clients, services map[string]string) (*Quotas, error) {
	names := slices.Sorted(maps.Keys(services))
	var unified []string
	for _, svc := range names {
		if _, ok := config.QuotaKeys[svc]; !ok {
			return nil, fmt.Errorf("quotas: unknown service %q (known: %s)", svc, strings.Join(slices.Sorted(maps.Keys(config.QuotaKeys)), ", "))
		}
		switch services[svc] {
		case MethodQuotaSets, MethodNone:
		case MethodUnifiedLimits:
			unified = append(unified, svc)
		default:
			return nil, fmt.Errorf("%s quotas: unknown method %q (known: %s, %s, %s)", svc, services[svc], MethodQuotaSets, MethodUnifiedLimits, MethodNone)
		}
	}

	q := &Quotas{
		methods:  maps.Clone(services),
		sets:     map[string]*gophercloud.ServiceClient{},
		limits:   map[string]limitTarget{},
		identity: c.Identity,
	}
	if q.methods == nil {
		q.methods = map[string]string{}
	}
	// Unified limits are read with a system-scoped token (see
	// newSystemIdentity). Getting it now turns a missing system role into
	// an error at start-up rather than on the first re-run of a row.
	if len(unified) > 0 {
		q.system = newSystemIdentity(c)
		if _, err := q.systemIdentity(ctx); err != nil {
			return nil, fmt.Errorf("%s quotas: unified limits: %w", strings.Join(unified, ", "), err)
		}
	}
	// Only region and interface carry over: c.Endpoint's type, name and
	// aliases, if any, select the identity service.
	eo := gophercloud.EndpointOpts{Region: c.Endpoint.Region, Availability: c.Endpoint.Availability}
	if eo.Availability == "" {
		eo.Availability = gophercloud.AvailabilityPublic
	}
	for _, svc := range names {
		switch services[svc] {
		case MethodQuotaSets:
			client, err := quotaSetClient(c.Provider, svc, eo)
			if err != nil {
				return nil, err
			}
			q.sets[svc] = client
		case MethodUnifiedLimits:
			t, err := findLimitTarget(ctx, c.Identity, svc, eo)
			if err != nil {
				return nil, err
			}
			q.limits[svc] = t
		}
	}
	return q, nil
}

// Services returns the configured services with their methods, "none"
// included. The map is a copy.
func (q *Quotas) Services() map[string]string { return maps.Clone(q.methods) }

// Apply sets want on projectID. Every key is checked before anything is
// written: a key not in config.QuotaKeys is an error wrapping
// [ErrUnknownQuota], a value below -1 or beyond int an error too. Keys of a
// service that is not configured or set to "none" are skipped. Each other
// service with at least one key gets its keys in one write: one PUT for
// quota-sets; one batch create for unified limits, which, when some of the
// limits exist already (409 Conflict), is followed by a list of the
// project's limits and updates of the differing ones. Services are written
// in sorted order and Apply stops at the first failure; written lists the
// services whose quotas now hold want.
//
// API calls: one per service written (more only on the unified-limits
// conflict path). Nova and Cinder refuse a limit below the project's
// current usage; kaizen does not force it.
func (q *Quotas) Apply(ctx context.Context, projectID string, want QuotaSet) (written []string, err error) {
	bySvc, err := q.group(want)
	if err != nil {
		return nil, fmt.Errorf("setting quotas of project %q: %w", projectID, err)
	}
	for _, svc := range slices.Sorted(maps.Keys(bySvc)) {
		switch q.methods[svc] {
		case MethodQuotaSets:
			err = q.setQuotaSet(ctx, svc, projectID, bySvc[svc])
		case MethodUnifiedLimits:
			err = q.setLimits(ctx, svc, projectID, bySvc[svc])
		}
		if err != nil {
			return written, fmt.Errorf("setting %s quotas of project %q: %w", svc, projectID, err)
		}
		written = append(written, svc)
	}
	return written, nil
}

// Get reads the current value of every key of every configured service not
// set to "none": for quota-sets, the effective quota (the project's
// override or the default), one GET per service; for unified limits, the
// project's limit, else the registered limit's default — one GET, and a
// second only when some key has no project limit. A unified-limits key
// with neither is left out: the service, not Keystone, decides what it
// means.
func (q *Quotas) Get(ctx context.Context, projectID string) (QuotaSet, error) {
	got := QuotaSet{}
	for _, svc := range slices.Sorted(maps.Keys(q.methods)) {
		var (
			vals map[string]int
			err  error
		)
		switch q.methods[svc] {
		case MethodQuotaSets:
			vals, err = q.getQuotaSet(ctx, svc, projectID)
		case MethodUnifiedLimits:
			vals, err = q.getLimits(ctx, svc, projectID)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s quotas of project %q: %w", svc, projectID, err)
		}
		for _, key := range config.QuotaKeys[svc] {
			if v, ok := vals[key]; ok {
				got[key] = int64(v)
			}
		}
	}
	return got, nil
}

// Reset removes projectID's overrides so the defaults apply again, for
// tests and dev-down: one DELETE per quota-sets service; for unified limits,
// a list of the project's limits and a DELETE for each that kaizen manages.
// The services keep their quotas when a project is deleted, so cleanup
// must call this first.
func (q *Quotas) Reset(ctx context.Context, projectID string) error {
	for _, svc := range slices.Sorted(maps.Keys(q.methods)) {
		var err error
		switch q.methods[svc] {
		case MethodQuotaSets:
			err = q.resetQuotaSet(ctx, svc, projectID)
		case MethodUnifiedLimits:
			err = q.resetLimits(ctx, svc, projectID)
		}
		if err != nil {
			return fmt.Errorf("resetting %s quotas of project %q: %w", svc, projectID, err)
		}
	}
	return nil
}

// group checks want and splits it by service, leaving out the services
// that are not written. Keys are visited in order so that the error for
// several bad keys is always the same.
func (q *Quotas) group(want QuotaSet) (map[string]map[string]int, error) {
	bySvc := map[string]map[string]int{}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		svc := quotaService(key)
		if svc == "" {
			var known []string
			for _, keys := range config.QuotaKeys {
				known = append(known, keys...)
			}
			slices.Sort(known)
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownQuota, key, strings.Join(known, ", "))
		}
		v, err := quotaInt(want[key])
		if err != nil {
			return nil, fmt.Errorf("quota %s = %d: %w", key, want[key], err)
		}
		if m := q.methods[svc]; m == "" || m == MethodNone {
			continue
		}
		if bySvc[svc] == nil {
			bySvc[svc] = map[string]int{}
		}
		bySvc[svc][key] = v
	}
	return bySvc, nil
}

// quotaService returns the service of a preset key, "" for an unknown key.
func quotaService(key string) string {
	for svc, keys := range config.QuotaKeys {
		if slices.Contains(keys, key) {
			return svc
		}
	}
	return ""
}

// quotaInt converts a value to gophercloud's int. The range check matters
// on 32-bit platforms only; the services cap values lower still (2³¹-1)
// and say so themselves.
func quotaInt(v int64) (int, error) {
	if v < -1 {
		return 0, errors.New("must be -1 (unlimited) or more")
	}
	if v > math.MaxInt {
		return 0, fmt.Errorf("exceeds the largest int, %d", math.MaxInt)
	}
	return int(v), nil
}

// missingService is the ErrServiceMissing error for svc.
func missingService(svc string, types []string, eo gophercloud.EndpointOpts) error {
	region := fmt.Sprintf("region %q", eo.Region)
	if eo.Region == "" {
		region = "any region"
	}
	quoted := make([]string, len(types))
	for i, t := range types {
		quoted[i] = fmt.Sprintf("%q", t)
	}
	what := quoted[len(quoted)-1]
	if len(quoted) > 1 {
		what = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + what
	}
	return fmt.Errorf("%s quotas: no %s endpoint in the catalog (%s, interface %q): %w",
		svc, what, region, eo.Availability, ErrServiceMissing)
}

// quotaSetClient finds svc's endpoint in the token's catalog.
func quotaSetClient(p *gophercloud.ProviderClient, svc string, eo gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error) {
	var (
		client *gophercloud.ServiceClient
		err    error
	)
	switch svc {
	case ServiceCompute:
		client, err = openstack.NewComputeV2(p, eo)
	case ServiceBlockStorage:
		// Cinder's catalog URL ends in the token's project
		// (…/v3/%(project_id)s), which is where Cinder wants the caller's
		// project; the target project follows os-quota-sets/.
		client, err = openstack.NewBlockStorageV3(p, eo)
	case ServiceNetwork:
		client, err = openstack.NewNetworkV2(p, eo)
	}
	var notFound *gophercloud.ErrEndpointNotFound
	if errors.As(err, &notFound) {
		// The types gophercloud searched: the service type and its aliases.
		eo.ApplyDefaults(svc)
		return nil, missingService(svc, eo.Types(), eo)
	}
	if err != nil {
		return nil, fmt.Errorf("%s quotas: finding the endpoint: %w", svc, err)
	}
	return client, nil
}

func (q *Quotas) setQuotaSet(ctx context.Context, svc, projectID string, want map[string]int) error {
	client := q.sets[svc]
	switch svc {
	case ServiceCompute:
		opts, err := computeUpdateOpts(want)
		if err != nil {
			return err
		}
		return computequotas.Update(ctx, client, projectID, opts).Err
	case ServiceBlockStorage:
		opts, err := blockStorageUpdateOpts(want)
		if err != nil {
			return err
		}
		return bsquotas.Update(ctx, client, projectID, opts).Err
	case ServiceNetwork:
		opts, err := networkUpdateOpts(want)
		if err != nil {
			return err
		}
		return netquotas.Update(ctx, client, projectID, opts).Err
	}
	return fmt.Errorf("no quota-sets API for service %q", svc)
}

func (q *Quotas) getQuotaSet(ctx context.Context, svc, projectID string) (map[string]int, error) {
	client := q.sets[svc]
	switch svc {
	case ServiceCompute:
		s, err := computequotas.Get(ctx, client, projectID).Extract()
		if err != nil {
			return nil, err
		}
		return map[string]int{
			"instances": s.Instances, "cores": s.Cores, "ram": s.RAM, "key_pairs": s.KeyPairs,
			"server_groups": s.ServerGroups, "server_group_members": s.ServerGroupMembers,
			"metadata_items": s.MetadataItems,
		}, nil
	case ServiceBlockStorage:
		s, err := bsquotas.Get(ctx, client, projectID).Extract()
		if err != nil {
			return nil, err
		}
		return map[string]int{
			"volumes": s.Volumes, "gigabytes": s.Gigabytes, "snapshots": s.Snapshots,
			"backups": s.Backups, "backup_gigabytes": s.BackupGigabytes,
		}, nil
	case ServiceNetwork:
		s, err := netquotas.Get(ctx, client, projectID).Extract()
		if err != nil {
			return nil, err
		}
		return map[string]int{
			"network": s.Network, "subnet": s.Subnet, "port": s.Port, "router": s.Router,
			"floatingip": s.FloatingIP, "security_group": s.SecurityGroup,
			"security_group_rule": s.SecurityGroupRule,
		}, nil
	}
	return nil, fmt.Errorf("no quota-sets API for service %q", svc)
}

// resetQuotaSet deletes the project's overrides. Neutron answers 404 when
// there are none, which is what Reset wants anyway.
func (q *Quotas) resetQuotaSet(ctx context.Context, svc, projectID string) error {
	client := q.sets[svc]
	var err error
	switch svc {
	case ServiceCompute:
		err = computequotas.Delete(ctx, client, projectID).Err
	case ServiceBlockStorage:
		err = bsquotas.Delete(ctx, client, projectID).ExtractErr()
	case ServiceNetwork:
		err = netquotas.Delete(ctx, client, projectID).ExtractErr()
	default:
		return fmt.Errorf("no quota-sets API for service %q", svc)
	}
	if isNotFound(err) {
		return nil
	}
	return err
}

// The *UpdateOpts functions map preset keys to gophercloud's fields; a key
// they lack means config.QuotaKeys grew without them.

func computeUpdateOpts(want map[string]int) (computequotas.UpdateOpts, error) {
	var o computequotas.UpdateOpts
	for key, v := range want {
		switch key {
		case "instances":
			o.Instances = &v
		case "cores":
			o.Cores = &v
		case "ram":
			o.RAM = &v
		case "key_pairs":
			o.KeyPairs = &v
		case "server_groups":
			o.ServerGroups = &v
		case "server_group_members":
			o.ServerGroupMembers = &v
		case "metadata_items":
			o.MetadataItems = &v
		default:
			return o, fmt.Errorf("no compute quota-set field for %q", key)
		}
	}
	return o, nil
}

func blockStorageUpdateOpts(want map[string]int) (bsquotas.UpdateOpts, error) {
	var o bsquotas.UpdateOpts
	for key, v := range want {
		switch key {
		case "volumes":
			o.Volumes = &v
		case "gigabytes":
			o.Gigabytes = &v
		case "snapshots":
			o.Snapshots = &v
		case "backups":
			o.Backups = &v
		case "backup_gigabytes":
			o.BackupGigabytes = &v
		default:
			return o, fmt.Errorf("no block-storage quota-set field for %q", key)
		}
	}
	return o, nil
}

func networkUpdateOpts(want map[string]int) (netquotas.UpdateOpts, error) {
	var o netquotas.UpdateOpts
	for key, v := range want {
		switch key {
		case "network":
			o.Network = &v
		case "subnet":
			o.Subnet = &v
		case "port":
			o.Port = &v
		case "router":
			o.Router = &v
		case "floatingip":
			o.FloatingIP = &v
		case "security_group":
			o.SecurityGroup = &v
		case "security_group_rule":
			o.SecurityGroupRule = &v
		default:
			return o, fmt.Errorf("no network quota field for %q", key)
		}
	}
	return o, nil
}
