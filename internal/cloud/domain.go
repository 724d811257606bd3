package cloud

import (
	"context"
	"errors"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
)

// Domain is a Keystone domain.
type Domain struct {
	ID      string
	Name    string
	Enabled bool
}

// FindDomain returns the domain named exactly name, or an error wrapping
// [ErrNoDomain]. One API call (GET /domains?name=).
func FindDomain(ctx context.Context, c *gophercloud.ServiceClient, name string) (Domain, error) {
	pages, err := domains.List(c, domains.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return Domain{}, fmt.Errorf("looking up domain %q: %w", name, err)
	}
	all, err := domains.ExtractDomains(pages)
	if err != nil {
		return Domain{}, fmt.Errorf("looking up domain %q: %w", name, err)
	}
	for _, d := range all {
		if d.Name == name { // the filter is exact already; be sure anyway
			return Domain{ID: d.ID, Name: d.Name, Enabled: d.Enabled}, nil
		}
	}
	return Domain{}, fmt.Errorf("domain %q: %w", name, ErrNoDomain)
}

// EnsureDomain returns the domain named name, creating it (enabled) when it
// does not exist and create is true; when create is false a missing domain
// is an error wrapping [ErrNoDomain]. A concurrent creator winning the race
// (409 Conflict) is resolved by reading the domain again.
//
// API calls: reuse 1 (GET list); create 2 (GET list, POST); lost race 3.
func EnsureDomain(ctx context.Context, c *gophercloud.ServiceClient, name string, create bool) (d Domain, created bool, err error) {
	d, err = FindDomain(ctx, c, name)
	if err == nil || !create || !errors.Is(err, ErrNoDomain) {
		return d, false, err
	}
	nd, err := domains.Create(ctx, c, domains.CreateOpts{
		Name:        name,
		Description: "Created by kaizen",
	}).Extract()
	if isConflict(err) {
		d, err = FindDomain(ctx, c, name)
		if err != nil {
			return Domain{}, false, fmt.Errorf("creating domain %q: Keystone reports a conflict, then: %w", name, err)
		}
		return d, false, nil
	}
	if err != nil {
		return Domain{}, false, fmt.Errorf("creating domain %q: %w", name, err)
	}
	return Domain{ID: nd.ID, Name: nd.Name, Enabled: nd.Enabled}, true, nil
}
