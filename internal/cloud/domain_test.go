package cloud_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

func randomName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func TestEnsureDomain(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)

	t.Run("existing domain is found", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c, n := countingIdentity(t, ks)
		id, name := ks.Domain(t)
		for _, create := range []bool{false, true} {
			d, created, err := cloud.EnsureDomain(ctx, c, name, create)
			if err != nil || created || d.ID != id || d.Name != name {
				t.Fatalf("EnsureDomain(%q, %v) = %+v, %v, %v; want %s, false, nil", name, create, d, created, err, id)
			}
			if got := calls(n); got != 1 {
				t.Errorf("EnsureDomain on an existing domain made %d API calls, want 1", got)
			}
		}
	})

	t.Run("missing domain without create is ErrNoDomain", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		name := randomName("kzt-missing-")
		_, created, err := cloud.EnsureDomain(ctx, ks.Identity, name, false)
		if !errors.Is(err, cloud.ErrNoDomain) || created {
			t.Fatalf("EnsureDomain(%q, false) = created %v, %v; want ErrNoDomain", name, created, err)
		}
	})

	t.Run("missing domain with create is created once", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c, n := countingIdentity(t, ks)
		name := randomName("kzt-ensure-domain-")
		d, created, err := cloud.EnsureDomain(ctx, c, name, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			off := false
			if _, err := domains.Update(ctx, ks.Identity, d.ID, domains.UpdateOpts{Enabled: &off}).Extract(); err != nil {
				t.Errorf("disabling domain %s: %v", d.ID, err)
			}
			if err := domains.Delete(ctx, ks.Identity, d.ID).ExtractErr(); err != nil {
				t.Errorf("deleting domain %s: %v", d.ID, err)
			}
		})
		if !created || d.Name != name || d.ID == "" || !d.Enabled {
			t.Fatalf("EnsureDomain(%q, true) = %+v, created %v; want a new enabled domain", name, d, created)
		}
		if got := calls(n); got != 2 {
			t.Errorf("creating a domain made %d API calls, want 2", got)
		}
		again, created, err := cloud.EnsureDomain(ctx, c, name, true)
		if err != nil || created || again.ID != d.ID {
			t.Fatalf("second EnsureDomain = %+v, created %v, %v; want %s, false", again, created, err, d.ID)
		}
	})
}
