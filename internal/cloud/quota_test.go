package cloud_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	bsquotas "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/registeredlimits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	netquotas "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestQuotasQuotaSets writes quotas through Nova's, Cinder's and Neutron's
// own quota APIs, checks what each service reports afterwards, and counts
// the requests: one per service written, read and reset.
func TestQuotasQuotaSets(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	for _, svc := range []string{cloud.ServiceCompute, cloud.ServiceBlockStorage, cloud.ServiceNetwork} {
		testenv.RequireQuotaService(t, svc)
	}
	region := quotaRegion()
	all := map[string]string{
		cloud.ServiceCompute:      cloud.MethodQuotaSets,
		cloud.ServiceBlockStorage: cloud.MethodQuotaSets,
		cloud.ServiceNetwork:      cloud.MethodQuotaSets,
	}
	tests := []struct {
		name        string
		services    map[string]string
		want        cloud.QuotaSet
		wantWritten []string
	}{
		{
			name:     "every key of every service",
			services: all,
			want: cloud.QuotaSet{
				"instances": 7, "cores": 13, "ram": 20480, "key_pairs": 11, "server_groups": 3,
				"server_group_members": 5, "metadata_items": 17,
				"volumes": 6, "gigabytes": 150, "snapshots": 4, "backups": 2, "backup_gigabytes": 75,
				"network": 3, "subnet": 4, "port": 25, "router": 2, "floatingip": 0,
				"security_group": 9, "security_group_rule": 77,
			},
			wantWritten: []string{cloud.ServiceBlockStorage, cloud.ServiceCompute, cloud.ServiceNetwork},
		},
		{
			name:        "unlimited",
			services:    all,
			want:        cloud.QuotaSet{"cores": -1, "ram": -1, "gigabytes": -1, "port": -1},
			wantWritten: []string{cloud.ServiceBlockStorage, cloud.ServiceCompute, cloud.ServiceNetwork},
		},
		{
			name:        "one service only",
			services:    all,
			want:        cloud.QuotaSet{"router": 1},
			wantWritten: []string{cloud.ServiceNetwork},
		},
		{
			name: "method none skipped",
			services: map[string]string{
				cloud.ServiceCompute: cloud.MethodQuotaSets, cloud.ServiceBlockStorage: cloud.MethodQuotaSets,
				cloud.ServiceNetwork: cloud.MethodNone,
			},
			want:        cloud.QuotaSet{"cores": 3, "network": 5, "port": 6},
			wantWritten: []string{cloud.ServiceCompute},
		},
		{
			name:        "unconfigured service skipped",
			services:    map[string]string{cloud.ServiceCompute: cloud.MethodQuotaSets},
			want:        cloud.QuotaSet{"instances": 2, "volumes": 2},
			wantWritten: []string{cloud.ServiceCompute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			project := newQuotaProject(t, ks)
			before := serviceQuotas(t, ks.Identity.ProviderClient, region, project)

			c, n := countingClients(t, ks, region)
			q, err := cloud.NewQuotas(ctx, c, tt.services)
			if err != nil {
				t.Fatal(err)
			}
			resetOnCleanup(t, q, project)
			if got := q.Services(); !maps.Equal(got, tt.services) {
				t.Errorf("Services() = %v, want %v", got, tt.services)
			}

			calls(n)
			written, err := q.Apply(ctx, project, tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(written, tt.wantWritten) {
				t.Errorf("written = %v, want %v", written, tt.wantWritten)
			}
			if got, want := calls(n), int64(len(tt.wantWritten)); got != want {
				t.Errorf("Apply made %d requests, want %d (one per service written)", got, want)
			}

			// What the services themselves now report: the keys of the
			// services written take want's values, all others keep theirs.
			after := serviceQuotas(t, ks.Identity.ProviderClient, region, project)
			for key, old := range before {
				want, set := tt.want[key]
				if !set || !slices.Contains(tt.wantWritten, serviceOf(key)) {
					want = old
				}
				if after[key] != want {
					t.Errorf("%s quota %s = %d, want %d", serviceOf(key), key, after[key], want)
				}
			}

			// Get reads every key of every service not set to none, one
			// request per service.
			got, err := q.Get(ctx, project)
			if err != nil {
				t.Fatal(err)
			}
			read := 0
			wantGet := cloud.QuotaSet{}
			for svc, method := range tt.services {
				if method == cloud.MethodNone {
					continue
				}
				read++
				for _, key := range config.QuotaKeys[svc] {
					wantGet[key] = after[key]
				}
			}
			if !maps.Equal(got, wantGet) {
				t.Errorf("Get = %v\nwant  %v", got, wantGet)
			}
			if got := calls(n); got != int64(read) {
				t.Errorf("Get made %d requests, want %d", got, read)
			}

			if err := q.Reset(ctx, project); err != nil {
				t.Fatal(err)
			}
			if got := calls(n); got != int64(read) {
				t.Errorf("Reset made %d requests, want %d", got, read)
			}
			if got := serviceQuotas(t, ks.Identity.ProviderClient, region, project); !maps.Equal(got, before) {
				t.Errorf("after Reset the services report %v\nwant the defaults %v", got, before)
			}
		})
	}
}

// TestQuotasErrors covers configuration and input errors; none of them may
// write anything.
func TestQuotasErrors(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	testenv.RequireQuotaService(t, cloud.ServiceCompute)
	testenv.RequireQuotaService(t, cloud.ServiceBlockStorage)
	testenv.RequireQuotaService(t, cloud.ServiceNetwork)
	region := quotaRegion()
	const nowhere = "kzt-no-such-region"

	t.Run("NewQuotas", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name      string
			services  map[string]string
			region    string
			iface     gophercloud.Availability
			wantIs    error  // nil: any error
			wantExact string // the whole message, when set
			wantIn    []string
		}{
			{
				name: "unknown method", services: map[string]string{"compute": "quota-set"}, region: region,
				wantIn: []string{"compute quotas", `unknown method "quota-set"`},
			},
			{
				name: "unknown service", services: map[string]string{"dns": cloud.MethodQuotaSets}, region: region,
				wantIn: []string{`unknown service "dns"`},
			},
			{
				name: "compute missing", services: map[string]string{"compute": cloud.MethodQuotaSets}, region: nowhere,
				wantIs:    cloud.ErrServiceMissing,
				wantExact: `compute quotas: no "compute" endpoint in the catalog (region "kzt-no-such-region", interface "public"): service has no endpoint in the catalog`,
			},
			{
				name: "block-storage missing", services: map[string]string{"block-storage": cloud.MethodQuotaSets}, region: nowhere,
				wantIs: cloud.ErrServiceMissing,
				wantIn: []string{"block-storage quotas", `no "block-storage", `, ` or "volumev3" endpoint`, `region "kzt-no-such-region"`},
			},
			{
				name: "network missing on the internal interface", services: map[string]string{"network": cloud.MethodQuotaSets},
				region: nowhere, iface: gophercloud.AvailabilityInternal,
				wantIs:    cloud.ErrServiceMissing,
				wantExact: `network quotas: no "network" endpoint in the catalog (region "kzt-no-such-region", interface "internal"): service has no endpoint in the catalog`,
			},
			{
				name: "unified-limits compute missing", services: map[string]string{"compute": cloud.MethodUnifiedLimits}, region: nowhere,
				wantIs:    cloud.ErrServiceMissing,
				wantExact: `compute quotas: no "compute" endpoint in the catalog (region "kzt-no-such-region", interface "public"): service has no endpoint in the catalog`,
			},
			{
				name: "unified-limits block-storage missing", services: map[string]string{"block-storage": cloud.MethodUnifiedLimits}, region: nowhere,
				wantIs: cloud.ErrServiceMissing,
				wantIn: []string{`no "block-storage" or "volumev3" endpoint`},
			},
			{
				name: "none needs no endpoint", services: map[string]string{"compute": cloud.MethodNone}, region: nowhere,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				c, _ := countingClients(t, ks, tt.region)
				c.Endpoint.Availability = tt.iface
				q, err := cloud.NewQuotas(t.Context(), c, tt.services)
				wantErr := tt.wantIs != nil || tt.wantExact != "" || tt.wantIn != nil
				if !wantErr {
					if err != nil {
						t.Fatal(err)
					}
					if got := q.Services(); !maps.Equal(got, tt.services) {
						t.Errorf("Services() = %v, want %v", got, tt.services)
					}
					return
				}
				if err == nil {
					t.Fatal("no error")
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("error %q does not wrap %q", err, tt.wantIs)
				}
				if tt.wantExact != "" && err.Error() != tt.wantExact {
					t.Errorf("error\n%s\nwant\n%s", err, tt.wantExact)
				}
				for _, s := range tt.wantIn {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
			})
		}
	})

	t.Run("Apply", func(t *testing.T) {
		t.Parallel()
		c, n := countingClients(t, ks, region)
		q, err := cloud.NewQuotas(t.Context(), c, map[string]string{
			cloud.ServiceCompute: cloud.MethodQuotaSets, cloud.ServiceNetwork: cloud.MethodQuotaSets,
		})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			want   cloud.QuotaSet
			wantIs error
			wantIn string // "" for success
		}{
			{"unknown key", cloud.QuotaSet{"cores": 2, "gpus": 1}, cloud.ErrUnknownQuota, `unknown quota "gpus"`},
			{"below unlimited", cloud.QuotaSet{"cores": 2, "port": -2}, nil, "quota port = -2: must be -1 (unlimited) or more"},
			{"nothing to set", cloud.QuotaSet{}, nil, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				calls(n)
				// The project does not exist: nothing may reach a service.
				written, err := q.Apply(t.Context(), "kzt-no-such-project", tt.want)
				if got := calls(n); got != 0 {
					t.Errorf("Apply made %d requests, want none", got)
				}
				if written != nil {
					t.Errorf("written = %v, want none", written)
				}
				if tt.wantIn == "" {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantIn)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("error %q does not wrap %q", err, tt.wantIs)
				}
			})
		}
	})
}

// novaResources are the unified-limits names of the compute keys the test
// uses.
var novaResources = map[string]string{
	"instances": "servers", "cores": "class:VCPU", "ram": "class:MEMORY_MB", "metadata_items": "server_metadata_items",
}

// TestQuotasUnifiedLimits writes compute quotas as unified limits in
// Keystone and reads them back through a system-scoped token of the test's
// own. Registered limits are global, keyed by service, region and
// resource, and the resource names are Nova's: the test creates those it
// needs only when missing and deletes only those it created. No other test
// touches them.
func TestQuotasUnifiedLimits(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	// The limits name the compute service, which the catalog lists only
	// when the local Nova runs.
	testenv.RequireQuotaService(t, cloud.ServiceCompute)
	region := quotaRegion()
	sys := systemIdentity(t, ks)
	computeID := serviceIDOfType(t, ks.Identity, "compute")
	defaults := map[string]int{}
	for res, def := range map[string]int{"servers": 10, "class:VCPU": 20, "class:MEMORY_MB": 51200} {
		defaults[res] = ensureRegisteredLimit(t, ks.Identity, computeID, region, res, def)
	}
	unified := map[string]string{cloud.ServiceCompute: cloud.MethodUnifiedLimits}

	tests := []struct {
		name   string
		region string // of the Clients; "" takes the endpoint's
		before cloud.QuotaSet
		want   cloud.QuotaSet
		// Requests Apply makes: one batch create when no limit exists. On
		// 409 Conflict: the rejected create, the list, then one update per
		// differing limit and one create for the missing ones.
		wantCalls int64
	}{
		{name: "create", region: region, want: cloud.QuotaSet{"instances": 4, "cores": 8, "ram": 16384}, wantCalls: 1},
		{name: "region from the endpoint", region: "", want: cloud.QuotaSet{"instances": 2}, wantCalls: 1},
		{name: "unlimited", region: region, want: cloud.QuotaSet{"instances": -1, "cores": -1}, wantCalls: 1},
		{
			name: "conflict updates the differing and creates the missing", region: region,
			before:    cloud.QuotaSet{"instances": 4, "cores": 8},
			want:      cloud.QuotaSet{"instances": 5, "cores": 8, "ram": 1024},
			wantCalls: 4,
		},
		{
			name: "conflict with equal values", region: region,
			before: cloud.QuotaSet{"instances": 4}, want: cloud.QuotaSet{"instances": 4},
			wantCalls: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			project := newQuotaProject(t, ks)
			c, n := countingClients(t, ks, tt.region)
			q, err := cloud.NewQuotas(ctx, c, unified)
			if err != nil {
				t.Fatal(err)
			}
			resetOnCleanup(t, q, project)
			if tt.before != nil {
				if _, err := q.Apply(ctx, project, tt.before); err != nil {
					t.Fatal(err)
				}
			}

			calls(n)
			written, err := q.Apply(ctx, project, tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(written, []string{cloud.ServiceCompute}) {
				t.Errorf("written = %v, want [compute]", written)
			}
			if got := calls(n); got != tt.wantCalls {
				t.Errorf("Apply made %d requests, want %d", got, tt.wantCalls)
			}

			wantLimits := map[string]int{}
			for _, set := range []cloud.QuotaSet{tt.before, tt.want} {
				for key, v := range set {
					wantLimits[novaResources[key]] = int(v)
				}
			}
			got := keystoneLimits(t, sys, project)
			if len(got) != len(wantLimits) {
				t.Errorf("Keystone holds %d limits for the project, want %d: %v", len(got), len(wantLimits), got)
			}
			for res, want := range wantLimits {
				l, ok := got[res]
				switch {
				case !ok:
					t.Errorf("no limit %s", res)
				case l.ResourceLimit != want || l.ServiceID != computeID || l.RegionID != region:
					t.Errorf("limit %s = %d (service %s, region %q), want %d (service %s, region %q)",
						res, l.ResourceLimit, l.ServiceID, l.RegionID, want, computeID, region)
				}
			}

			// Get: the project's limit, else the registered default.
			vals, err := q.Get(ctx, project)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"instances", "cores", "ram"} {
				want, ok := wantLimits[novaResources[key]]
				if !ok {
					want = defaults[novaResources[key]]
				}
				if vals[key] != int64(want) {
					t.Errorf("Get: %s = %d, want %d", key, vals[key], want)
				}
			}

			if err := q.Reset(ctx, project); err != nil {
				t.Fatal(err)
			}
			if got := keystoneLimits(t, sys, project); len(got) != 0 {
				t.Errorf("after Reset Keystone still holds %v", got)
			}
		})
	}

	// NewQuotas rescopes the admin's token to the system; an admin token
	// that has been revoked (or has expired) is renewed first. Later, a
	// system token refused with 401 takes the same way.
	t.Run("revoked admin token renewed", func(t *testing.T) {
		ctx := t.Context()
		project := newQuotaProject(t, ks)
		c, n := countingClients(t, ks, region)
		old := c.Provider.Token()
		if err := tokens.Revoke(ctx, ks.Identity, old).Err; err != nil {
			t.Fatalf("revoke the admin token: %v", err)
		}
		calls(n)
		q, err := cloud.NewQuotas(ctx, c, unified)
		if err != nil {
			t.Fatal(err)
		}
		resetOnCleanup(t, q, project)
		if c.Provider.Token() == old {
			t.Error("the admin token was not renewed")
		}
		// Rescoping refused (404), admin authentication, rescoping, then
		// the services and endpoints lists.
		if got := calls(n); got != 5 {
			t.Errorf("NewQuotas made %d requests, want 5", got)
		}
		if _, err := q.Apply(ctx, project, cloud.QuotaSet{"instances": 6}); err != nil {
			t.Fatal(err)
		}
		vals, err := q.Get(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		if vals["instances"] != 6 {
			t.Errorf("Get: instances = %d, want 6", vals["instances"])
		}
	})

	t.Run("missing registered limit", func(t *testing.T) {
		ctx := t.Context()
		const res = "server_metadata_items"
		if d, ok := registeredLimit(t, ks.Identity, computeID, region, res); ok {
			msg := fmt.Sprintf("a registered limit for %s exists (default %d); this case needs none", res, d)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg + " (CI=true: the fresh dev Keystone has none, so something left one behind)")
			}
			t.Skip(msg)
		}
		project := newQuotaProject(t, ks)
		c, _ := countingClients(t, ks, region)
		q, err := cloud.NewQuotas(ctx, c, unified)
		if err != nil {
			t.Fatal(err)
		}
		resetOnCleanup(t, q, project)
		written, err := q.Apply(ctx, project, cloud.QuotaSet{"instances": 3, "metadata_items": 5})
		if !errors.Is(err, cloud.ErrNoRegisteredLimit) {
			t.Fatalf("error %v, want one wrapping ErrNoRegisteredLimit", err)
		}
		t.Log(err)
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("error %v does not keep Keystone's 403", err)
		}
		for _, s := range []string{"compute", project, res, "openstack registered limit create --service " + computeID, "--region " + region} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not contain %q", err, s)
			}
		}
		if strings.Contains(err.Error(), ": servers") {
			t.Errorf("error %q names servers, whose registered limit exists", err)
		}
		if written != nil {
			t.Errorf("written = %v, want none", written)
		}
		// Keystone creates a batch entirely or not at all.
		if got := keystoneLimits(t, sys, project); len(got) != 0 {
			t.Errorf("Keystone holds %v after a refused batch", got)
		}
	})
}

func quotaRegion() string { return cmp.Or(os.Getenv("OS_REGION_NAME"), "RegionOne") }

// countingClients returns admin Clients of their own, in region, whose
// requests are counted.
func countingClients(t *testing.T, ks *testenv.KeystoneEnv, region string) (*cloud.Clients, *atomic.Int64) {
	t.Helper()
	identity, n := countingIdentity(t, ks)
	return &cloud.Clients{
		Provider: identity.ProviderClient,
		Identity: identity,
		Endpoint: gophercloud.EndpointOpts{Region: region},
	}, n
}

// newQuotaProject creates a project in a domain of the test's own.
func newQuotaProject(t *testing.T, ks *testenv.KeystoneEnv) string {
	t.Helper()
	domainID, _ := ks.Domain(t)
	p, err := projects.Create(t.Context(), ks.Identity, projects.CreateOpts{DomainID: domainID, Name: "quotas"}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	return p.ID
}

// resetOnCleanup resets the project's quotas when the test ends: deleting
// the domain does not delete quotas kept by other services. Registered
// after ks.Domain, it runs before the domain is deleted.
func resetOnCleanup(t *testing.T, q *cloud.Quotas, projectID string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := q.Reset(ctx, projectID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func serviceOf(key string) string {
	for svc, keys := range config.QuotaKeys {
		if slices.Contains(keys, key) {
			return svc
		}
	}
	return ""
}

// serviceQuotas reads every preset key from the services' quota APIs,
// decoding the JSON by name rather than through cloud's field mapping.
func serviceQuotas(t *testing.T, provider *gophercloud.ProviderClient, region, projectID string) cloud.QuotaSet {
	t.Helper()
	ctx := t.Context()
	eo := gophercloud.EndpointOpts{Region: region}
	got := cloud.QuotaSet{}
	read := func(svc, wrapper string, r interface{ ExtractInto(any) error }) {
		t.Helper()
		var body map[string]map[string]any
		if err := r.ExtractInto(&body); err != nil {
			t.Fatalf("read %s quotas: %v", svc, err)
		}
		for _, key := range config.QuotaKeys[svc] {
			v, ok := body[wrapper][key].(float64)
			if !ok {
				t.Fatalf("%s quotas lack %q: %v", svc, key, body)
			}
			got[key] = int64(v)
		}
	}
	compute, err := openstack.NewComputeV2(provider, eo)
	if err != nil {
		t.Fatal(err)
	}
	read(cloud.ServiceCompute, "quota_set", computequotas.Get(ctx, compute, projectID))
	volume, err := openstack.NewBlockStorageV3(provider, eo)
	if err != nil {
		t.Fatal(err)
	}
	read(cloud.ServiceBlockStorage, "quota_set", bsquotas.Get(ctx, volume, projectID))
	network, err := openstack.NewNetworkV2(provider, eo)
	if err != nil {
		t.Fatal(err)
	}
	read(cloud.ServiceNetwork, "quota", netquotas.Get(ctx, network, projectID))
	return got
}

// systemIdentity is an admin identity client with a system-scoped token:
// Keystone lists another project's limits to no other.
func systemIdentity(t *testing.T, ks *testenv.KeystoneEnv) *gophercloud.ServiceClient {
	t.Helper()
	provider, err := openstack.NewClient(ks.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	provider.HTTPClient = http.Client{Timeout: time.Minute}
	ao := ks.AdminAuthOptions()
	ao.Scope = &gophercloud.AuthScope{System: true}
	if err := openstack.Authenticate(t.Context(), provider, ao); err != nil {
		t.Fatalf("system-scoped token: %v", err)
	}
	c, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keystoneLimits returns the project's limits by resource name.
func keystoneLimits(t *testing.T, sys *gophercloud.ServiceClient, projectID string) map[string]limits.Limit {
	t.Helper()
	pages, err := limits.List(sys, limits.ListOpts{ProjectID: projectID}).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list limits: %v", err)
	}
	all, err := limits.ExtractLimits(pages)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]limits.Limit{}
	for _, l := range all {
		got[l.ResourceName] = l
	}
	return got
}

func serviceIDOfType(t *testing.T, identity *gophercloud.ServiceClient, typ string) string {
	t.Helper()
	pages, err := services.List(identity, services.ListOpts{ServiceType: typ}).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	all, err := services.ExtractServices(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d services of type %q, want 1: %v", len(all), typ, all)
	}
	return all[0].ID
}

func registeredLimit(t *testing.T, identity *gophercloud.ServiceClient, serviceID, region, resource string) (defaultLimit int, ok bool) {
	t.Helper()
	pages, err := registeredlimits.List(identity, registeredlimits.ListOpts{
		ServiceID: serviceID, RegionID: region, ResourceName: resource,
	}).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	all, err := registeredlimits.ExtractRegisteredLimits(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.ServiceID == serviceID && r.RegionID == region && r.ResourceName == resource {
			return r.DefaultLimit, true
		}
	}
	return 0, false
}

// ensureRegisteredLimit returns the default of the registered limit for
// resource, creating it with def when there is none and deleting it when
// the test ends. One that exists already is left alone.
func ensureRegisteredLimit(t *testing.T, identity *gophercloud.ServiceClient, serviceID, region, resource string, def int) int {
	t.Helper()
	if d, ok := registeredLimit(t, identity, serviceID, region, resource); ok {
		return d
	}
	created, err := registeredlimits.BatchCreate(t.Context(), identity, registeredlimits.BatchCreateOpts{{
		ServiceID: serviceID, RegionID: region, ResourceName: resource, DefaultLimit: def,
		Description: "kaizen test " + t.Name(),
	}}).Extract()
	if err != nil {
		t.Fatalf("create registered limit %s: %v", resource, err)
	}
	t.Cleanup(func() {
		// Keystone refuses while project limits refer to it; the subtests'
		// cleanups, which run first, delete those.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := registeredlimits.Delete(ctx, identity, created[0].ID).ExtractErr()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("cleanup: delete registered limit %s (%s): %v", resource, created[0].ID, err)
		}
	})
	return def
}
