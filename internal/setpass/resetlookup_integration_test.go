package setpass

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestResetPageCannotListTheDirectory posts the /reset form, through the
// real handler, with setpass's directory on the real Keystone behind a
// counting proxy: addresses made of LIKE wildcards, or a prefix of a real
// one, reach nobody and cost exactly one user lookup; a mixed-case account
// made outside kaizen is found by its address typed in any case.
func TestResetPageCannotListTheDirectory(t *testing.T) {
	f := newKSFixture(t)
	ctx := t.Context()
	cc := testenv.NewCountingCloud(t)
	opts := f.ks.AdminAuthOptions()
	opts.IdentityEndpoint = cc.AuthURL
	provider, err := openstack.NewClient(cc.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	reached := &testenv.UsersReached{Next: http.DefaultTransport}
	provider.HTTPClient = http.Client{Timeout: time.Minute, Transport: reached}
	if err := openstack.Authenticate(ctx, provider, opts); err != nil {
		t.Fatal(err)
	}
	identity, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeystone(cloud.NewKeystone(identity), f.ks.Admin.ProjectName, f.ks.Admin.ProjectDomainName)

	// Unique across domains: the lookup is.
	tag := strings.ToLower(rand.Text()[:8])
	grace := f.user("Grace-"+tag+"@Example.org", "pw-grace-123456", "", "member") // as another tool makes it
	ada := f.user("ada-"+tag+"@example.org", "pw-ada-123456", "", "member")
	re := newResetEnvDir(t, false, k, nil)
	for _, id := range []string{grace.ID, ada.ID} {
		if err := re.store.PutPIN(ctx, id, pinMAC(testKeys(t), id, testPIN), re.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	reached.Reset()
	unknown := re.ask("nobody-" + tag + "@example.org")
	if unknown.Code != http.StatusOK || reached.Take() != 0 {
		t.Fatalf("an unknown address: %d", unknown.Code)
	}

	lookups := func(t *testing.T, want map[string]int) {
		t.Helper()
		got := cc.Counts()["identity"]
		reads := 0
		for path, n := range want {
			if got.ByPath["GET "+path] != n {
				t.Errorf("GET %s: %d requests, want %d (all: %v)", path, got.ByPath["GET "+path], n, got.ByPath)
			}
			reads += n
		}
		if got.Reads != reads || got.Writes != 0 {
			t.Errorf("%d reads and %d writes, want %d reads only (all: %v)", got.Reads, got.Writes, reads, got.ByPath)
		}
	}
	for _, tc := range []struct{ name, typed string }{
		{"percent wildcards", "%@%"},
		{"underscore wildcards", "_@_"},
		{"stars", "*@*"},
		{"a prefix of a real address", "ada-" + tag + "@example.or"},
		{"a suffix of a real address", "da-" + tag + "@example.org"},
		{"percent inside a real address", "ada-" + tag + "@%"},
		{"underscore for a letter of a real address", "ad_-" + tag + "@example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(re.mail.all())
			cc.Reset()
			w := re.ask(tc.typed)
			if w.Code != unknown.Code || w.Body.String() != unknown.Body.String() {
				t.Errorf("%q answered %d, unlike an unknown address", tc.typed, w.Code)
			}
			lookups(t, map[string]int{"/v3/users": 1})
			if n := reached.Take(); n != 0 {
				t.Errorf("Keystone answered %q with %d users, want none", tc.typed, n)
			}
			if got := re.mail.all(); len(got) != before {
				t.Errorf("%q queued mail: %+v", tc.typed, got[before:])
			}
		})
	}
	for _, typed := range []string{"grace-" + tag + "@example.org", "GRACE-" + strings.ToUpper(tag) + "@eXample.ORG"} {
		t.Run("mixed case found as "+typed, func(t *testing.T) {
			before := len(re.mail.all())
			cc.Reset()
			if w := re.ask(typed); w.Body.String() != unknown.Body.String() {
				t.Errorf("%q answered %d, unlike an unknown address", typed, w.Code)
			}
			lookups(t, map[string]int{"/v3/users": 1, "/v3/role_assignments": 1})
			if n := reached.Take(); n != 1 {
				t.Errorf("Keystone answered %q with %d users, want grace alone", typed, n)
			}
			got := re.mail.all()
			if len(got) != before+1 || got[before].to[0].Address != grace.Name {
				t.Fatalf("mail after asking for %q: %+v; want one link to %s", typed, got[before:], grace.Name)
			}
		})
	}
}
