package cloud

import (
	"context"
	"errors"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
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
	return NewKeystone(c).FindDomain(ctx, name)
}

// EnsureDomain is [Ops.EnsureDomain] on Keystone c.
func EnsureDomain(ctx context.Context, c *gophercloud.ServiceClient, name string, create bool) (d Domain, created bool, err error) {
	return ops(c).EnsureDomain(ctx, name, create)
}

// EnsureDomain returns the domain named name, creating it (enabled) when it
// does not exist and create is true; when create is false a missing domain
// is an error wrapping [ErrNoDomain]. A concurrent creator winning the race
// (409 Conflict) is resolved by reading the domain again.
//
// API calls: reuse 1 (GET list); create 2 (GET list, POST); lost race 3.
func (o Ops) EnsureDomain(ctx context.Context, name string, create bool) (d Domain, created bool, err error) {
	return EnsureDomainOn(ctx, o, name, create)
}

// DomainMaker finds and creates domains ([Domains] without deleting).
type DomainMaker interface {
	FindDomain(ctx context.Context, name string) (Domain, error)
	CreateDomain(ctx context.Context, name, description string) (Domain, error)
}

// EnsureDomainOn is [Ops.EnsureDomain] on any o that finds and creates
// domains.
func EnsureDomainOn(ctx context.Context, o DomainMaker, name string, create bool) (d Domain, created bool, err error) {
	d, err = o.FindDomain(ctx, name)
	if err == nil || !create || !errors.Is(err, ErrNoDomain) {
		return d, false, err
	}
	nd, err := o.CreateDomain(ctx, name, "Created by kaizen")
	if errors.Is(err, ErrConflict) {
		d, err = o.FindDomain(ctx, name)
		if err != nil {
			return Domain{}, false, fmt.Errorf("creating domain %q: Keystone reports a conflict, then: %w", name, err)
		}
		return d, false, nil
	}
	if err != nil {
		return Domain{}, false, err
	}
	return nd, true, nil
}
