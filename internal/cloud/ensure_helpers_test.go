package cloud_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// countingTransport counts the HTTP requests that pass through it.
type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// countingIdentity returns an admin identity client of its own whose
// requests are counted, the counter reset after authentication, so a test
// can check how many API calls an operation makes.
func countingIdentity(t *testing.T, ks *testenv.KeystoneEnv) (*gophercloud.ServiceClient, *atomic.Int64) {
	t.Helper()
	provider, err := openstack.NewClient(ks.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	ct := &countingTransport{next: http.DefaultTransport}
	provider.HTTPClient = http.Client{Timeout: time.Minute, Transport: ct}
	if err := openstack.Authenticate(t.Context(), provider, ks.AdminAuthOptions()); err != nil {
		t.Fatal(err)
	}
	c, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	ct.n.Store(0)
	return c, &ct.n
}

// calls returns the count and resets it.
func calls(n *atomic.Int64) int64 { return n.Swap(0) }
