package testenv

import (
	"context"
	"os"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	bsquotas "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	netquotas "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
)

// TestQuotaServices sets one quota per service for a fresh project through
// the real Nova, Cinder and Neutron APIs found in Keystone's catalog, and
// reads it back.
func TestQuotaServices(t *testing.T) {
	t.Parallel()
	ks := Keystone(t)
	ctx := t.Context()
	domainID, _ := ks.Domain(t)
	project, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{
		DomainID: domainID, Name: "quotas",
	}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	provider := ks.Identity.ProviderClient
	region := os.Getenv("OS_REGION_NAME")
	if region == "" {
		region = "RegionOne"
	}
	eo := gophercloud.EndpointOpts{Region: region}

	// Deleting the domain does not delete quotas kept by other services.
	cleanup := func(name string, del func(context.Context) error) {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), keystoneHTTPTimeout)
			defer cancel()
			if err := del(ctx); err != nil {
				t.Errorf("reset %s quotas of %s: %v", name, project.ID, err)
			}
		})
	}

	t.Run("compute", func(t *testing.T) {
		t.Parallel()
		RequireQuotaService(t, "compute")
		client, err := openstack.NewComputeV2(provider, eo)
		if err != nil {
			t.Fatalf("compute client: %v", err)
		}
		cores := 7
		if _, err := computequotas.Update(ctx, client, project.ID, computequotas.UpdateOpts{Cores: &cores}).Extract(); err != nil {
			t.Fatalf("set cores quota: %v", err)
		}
		cleanup("compute", func(ctx context.Context) error {
			return computequotas.Delete(ctx, client, project.ID).Err
		})
		got, err := computequotas.Get(ctx, client, project.ID).Extract()
		if err != nil {
			t.Fatalf("get compute quotas: %v", err)
		}
		if got.Cores != cores {
			t.Errorf("cores quota = %d, want %d", got.Cores, cores)
		}
	})

	t.Run("block-storage", func(t *testing.T) {
		t.Parallel()
		RequireQuotaService(t, "block-storage")
		client, err := openstack.NewBlockStorageV3(provider, eo)
		if err != nil {
			t.Fatalf("block-storage client: %v", err)
		}
		volumes := 3
		if _, err := bsquotas.Update(ctx, client, project.ID, bsquotas.UpdateOpts{Volumes: &volumes}).Extract(); err != nil {
			t.Fatalf("set volumes quota: %v", err)
		}
		cleanup("block-storage", func(ctx context.Context) error {
			return bsquotas.Delete(ctx, client, project.ID).ExtractErr()
		})
		got, err := bsquotas.Get(ctx, client, project.ID).Extract()
		if err != nil {
			t.Fatalf("get block-storage quotas: %v", err)
		}
		if got.Volumes != volumes {
			t.Errorf("volumes quota = %d, want %d", got.Volumes, volumes)
		}
	})

	t.Run("network", func(t *testing.T) {
		t.Parallel()
		RequireQuotaService(t, "network")
		client, err := openstack.NewNetworkV2(provider, eo)
		if err != nil {
			t.Fatalf("network client: %v", err)
		}
		networks, routers := 2, 4
		if _, err := netquotas.Update(ctx, client, project.ID,
			netquotas.UpdateOpts{Network: &networks, Router: &routers}).Extract(); err != nil {
			t.Fatalf("set network quotas: %v", err)
		}
		cleanup("network", func(ctx context.Context) error {
			return netquotas.Delete(ctx, client, project.ID).ExtractErr()
		})
		got, err := netquotas.Get(ctx, client, project.ID).Extract()
		if err != nil {
			t.Fatalf("get network quotas: %v", err)
		}
		if got.Network != networks || got.Router != routers {
			t.Errorf("network, router quotas = %d, %d, want %d, %d", got.Network, got.Router, networks, routers)
		}
	})
}
