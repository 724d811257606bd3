// Package cloud talks to OpenStack through gophercloud: authentication here,
// and one file per resource as the capabilities that need them arrive.
package cloud

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	osconfig "github.com/gophercloud/gophercloud/v2/openstack/config"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Clients are the authenticated admin connection and the service clients
// derived from it.
type Clients struct {
	Provider *gophercloud.ProviderClient
	Identity *gophercloud.ServiceClient
	Endpoint gophercloud.EndpointOpts
}

// Connect authenticates with the configured admin credentials. The provider
// re-authenticates by itself when its token expires mid-batch.
func Connect(ctx context.Context, o config.OpenStack) (*Clients, error) {
	ao, _, _ := o.Auth()
	return ConnectAs(ctx, o, ao)
}

// ConnectAs authenticates with ao instead of the configured admin
// credentials, on the endpoint, TLS settings and timeout of o (setpass's
// reset credential).
func ConnectAs(ctx context.Context, o config.OpenStack, ao gophercloud.AuthOptions) (*Clients, error) {
	_, eo, tlsConfig := o.Auth()
	// gophercloud's option type is unexported, so the options cannot be
	// collected in a slice; WithTLSConfig(nil) leaves the transport alone.
	provider, err := osconfig.NewProviderClient(ctx, ao,
		osconfig.WithHTTPClient(http.Client{Timeout: o.Timeout.D}),
		osconfig.WithTLSConfig(tlsConfig))
	if err != nil {
		return nil, fmt.Errorf("authenticating to OpenStack at %s as %q: %w", ao.IdentityEndpoint, ao.Username+ao.UserID+ao.ApplicationCredentialID, err)
	}
	identity, err := openstack.NewIdentityV3(provider, eo)
	if err != nil {
		return nil, fmt.Errorf("finding the identity v3 endpoint in the catalog: %w", err)
	}
	return &Clients{Provider: provider, Identity: identity, Endpoint: eo}, nil
}
