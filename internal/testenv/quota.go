package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	bsquotas "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	netquotas "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
)

// quotaServicesEnv lists the quota APIs `scripts/dev-keystone env` found
// running, among compute, block-storage and network.
const quotaServicesEnv = "KAIZEN_TEST_QUOTA_SERVICES"

// RequireQuotaService skips the test when the local quota API of service
// (compute, block-storage or network) is not running, or fails it under
// CI=true.
func RequireQuotaService(t testing.TB, service string) {
	t.Helper()
	if slices.Contains(strings.Split(os.Getenv(quotaServicesEnv), ","), service) {
		return
	}
	msg := "the local " + service + " quota API is not running (" + quotaServicesEnv + "=" +
		os.Getenv(quotaServicesEnv) + "); start it: " + keystoneStartHint
	if os.Getenv("CI") == "true" {
		t.Fatalf("testenv: %s; CI=true, so this fails instead of skipping", msg)
	}
	t.Skipf("testenv: %s", msg)
}

// QuotaClients are direct admin clients of the quota APIs of Nova, Cinder
// and Neutron, for reading back what a test set.
type QuotaClients struct {
	// Endpoint selects the region: OS_REGION_NAME, or RegionOne.
	Endpoint                 gophercloud.EndpointOpts
	Compute, Volume, Network *gophercloud.ServiceClient
}

// QuotaClients builds the quota clients on k's admin session.
func (k *KeystoneEnv) QuotaClients(t testing.TB) QuotaClients {
	t.Helper()
	region := os.Getenv("OS_REGION_NAME")
	if region == "" {
		region = "RegionOne"
	}
	q := QuotaClients{Endpoint: gophercloud.EndpointOpts{Region: region}}
	var err error
	p := k.Identity.ProviderClient
	if q.Compute, err = openstack.NewComputeV2(p, q.Endpoint); err != nil {
		t.Fatalf("compute client: %v", err)
	}
	if q.Volume, err = openstack.NewBlockStorageV3(p, q.Endpoint); err != nil {
		t.Fatalf("block-storage client: %v", err)
	}
	if q.Network, err = openstack.NewNetworkV2(p, q.Endpoint); err != nil {
		t.Fatalf("network client: %v", err)
	}
	return q
}

// Get reads a project's quotas from Nova, Cinder and Neutron themselves,
// under the preset keys.
func (q QuotaClients) Get(t testing.TB, projectID string) map[string]int64 {
	t.Helper()
	ctx := t.Context()
	c, err := computequotas.Get(ctx, q.Compute, projectID).Extract()
	if err != nil {
		t.Fatalf("compute quotas: %v", err)
	}
	b, err := bsquotas.Get(ctx, q.Volume, projectID).Extract()
	if err != nil {
		t.Fatalf("block-storage quotas: %v", err)
	}
	n, err := netquotas.Get(ctx, q.Network, projectID).Extract()
	if err != nil {
		t.Fatalf("network quotas: %v", err)
	}
	return map[string]int64{
		"instances": int64(c.Instances), "cores": int64(c.Cores), "ram": int64(c.RAM),
		"volumes": int64(b.Volumes), "gigabytes": int64(b.Gigabytes),
		"network": int64(n.Network), "subnet": int64(n.Subnet), "router": int64(n.Router),
		"floatingip": int64(n.FloatingIP), "port": int64(n.Port),
	}
}
