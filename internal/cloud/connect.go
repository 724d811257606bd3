// Package cloud talks to OpenStack through gophercloud: authentication here,
// and one file per resource as the capabilities that need them arrive.
package cloud

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Clients are the authenticated admin connection and the service clients
// derived from it.
type Clients struct {
	Provider *gophercloud.ProviderClient
	Identity *gophercloud.ServiceClient
	Endpoint gophercloud.EndpointOpts
	// Retrier repeats the provider's transiently failed requests and
	// counts them; nil when the clients were built without one.
	Retrier *Retrier
}

// Retries returns the retried requests by service (see [Retrier.Retries]).
func (c *Clients) Retries() map[string]int { return c.Retrier.Retries() }

// Connect authenticates with the configured admin credentials. The provider
// re-authenticates by itself when its token expires mid-batch.
func Connect(ctx context.Context, o config.OpenStack) (*Clients, error) {
	ao, _, _ := o.Auth()
	return ConnectAs(ctx, o, ao)
}

// ConnectAs authenticates with ao instead of the configured admin
// credentials, on the endpoint, TLS settings, timeout and retry budget of o
// (setpass's reset credential).
func ConnectAs(ctx context.Context, o config.OpenStack, ao gophercloud.AuthOptions) (*Clients, error) {
	_, eo, tlsConfig := o.Auth()
	hc := &http.Client{Timeout: o.Timeout.D}
	if tlsConfig != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tlsConfig
		hc.Transport = t
	}
	return ConnectWith(ctx, ao, eo, hc, RetryPolicy{MaxWait: RetryMaxWait(o)})
}

// RetryMaxWait is openstack.retry_max_wait as a [RetryPolicy.MaxWait]:
// "0s" disables retries.
func RetryMaxWait(o config.OpenStack) time.Duration {
	if o.RetryMaxWait.D <= 0 {
		return -1
	}
	return o.RetryMaxWait.D
}

// ConnectWith authenticates with ao over hc (each attempt bounded by hc's
// timeout), retrying transient faults, the token request included, as
// policy says.
func ConnectWith(ctx context.Context, ao gophercloud.AuthOptions, eo gophercloud.EndpointOpts, hc *http.Client, policy RetryPolicy) (*Clients, error) {
	provider, err := openstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("OpenStack auth URL %q: %w", ao.IdentityEndpoint, err)
	}
	provider.HTTPClient = *hc
	r := NewRetrier(policy)
	r.NameEndpoint(ao.IdentityEndpoint, "identity")
	r.Install(provider)
	if err := openstack.Authenticate(ctx, provider, ao); err != nil {
		return nil, fmt.Errorf("authenticating to OpenStack at %s as %q: %w", ao.IdentityEndpoint, ao.Username+ao.UserID+ao.ApplicationCredentialID, err)
	}
	nameCatalog(r, provider)
	identity, err := openstack.NewIdentityV3(provider, eo)
	if err != nil {
		return nil, fmt.Errorf("finding the identity v3 endpoint in the catalog: %w", err)
	}
	r.NameEndpoint(identity.Endpoint, "identity")
	return &Clients{Provider: provider, Identity: identity, Endpoint: eo, Retrier: r}, nil
}

// nameCatalog names every catalog endpoint by its service type, so that
// retries are counted, and exhausted ones reported, by service.
func nameCatalog(r *Retrier, provider *gophercloud.ProviderClient) {
	res, ok := provider.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return
	}
	cat, err := res.ExtractServiceCatalog()
	if err != nil {
		return
	}
	for _, e := range cat.Entries {
		for _, ep := range e.Endpoints {
			r.NameEndpoint(ep.URL, e.Type)
		}
	}
}
