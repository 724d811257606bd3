package cloud_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestUsersNamedIsNeverAPattern: on the real Keystone, a name is matched
// whole, ignoring case, and never as a LIKE pattern (Keystone does not
// escape % and _), in exactly one API call, in one domain or across all.
func TestUsersNamedIsNeverAPattern(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	ctx := t.Context()
	domainID, _ := ks.Domain(t)
	ids := map[string]string{}
	// ada and a_b as kaizen creates them (lower case); Grace as another
	// tool might; the rest are decoys a pattern or a substring would hit.
	for _, name := range []string{"ada@example.org", "Grace@Example.org", "a_b@example.org", "axb@example.org",
		"ada@example.org.uk", "xada@example.org", "ada@example.org@ada@example.org"} {
		u, err := users.Create(ctx, ks.Identity, users.CreateOpts{DomainID: domainID, Name: name}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = u.ID
	}
	c, n := countingIdentity(t, ks)
	reached := &testenv.UsersReached{Next: c.ProviderClient.HTTPClient.Transport}
	c.ProviderClient.HTTPClient.Transport = reached
	tests := []struct {
		name, typed string
		want        []string // names whose users are found
		// extra is how many users Keystone answers with beyond those:
		// names that start and end with the typed one, dropped by the
		// comparison. Never a pattern's catch.
		extra int
	}{
		{"percent wildcards", "%@%", nil, 0},
		{"underscore wildcards", "_@_", nil, 0},
		{"stars", "*@*", nil, 0},
		{"a prefix of a real name", "ada@example.or", nil, 0},
		{"a suffix of a real name", "da@example.org", nil, 0},
		{"percent inside a real name", "ada@exam%", nil, 0},
		{"underscore standing for one letter", "a_b@example.org", []string{"a_b@example.org"}, 0},
		{"underscore in another case", "A_B@Example.org", []string{"a_b@example.org"}, 0},
		{"exact", "ada@example.org", []string{"ada@example.org"}, 1},
		{"upper case", "ADA@EXAMPLE.ORG", []string{"ada@example.org"}, 1},
		{"mixed case made elsewhere, typed in lower case", "grace@example.org", []string{"Grace@Example.org"}, 0},
		{"mixed case made elsewhere, typed in another case", "gRACE@eXAMPLE.ORG", []string{"Grace@Example.org"}, 0},
		{"a name that starts and ends with another", "ada@example.org@ada@example.org", []string{"ada@example.org@ada@example.org"}, 0},
	}
	for _, tc := range tests {
		for _, scope := range []struct{ name, domainID string }{{"domain", domainID}, {"all domains", ""}} {
			t.Run(tc.name+"/"+scope.name, func(t *testing.T) {
				calls(n)
				reached.Reset()
				got, err := cloud.UsersNamed(ctx, c, scope.domainID, tc.typed)
				if err != nil {
					t.Fatal(err)
				}
				if k := calls(n); k != 1 {
					t.Errorf("UsersNamed(%q) made %d API calls, want 1", tc.typed, k)
				}
				if r := reached.N(); r != int64(len(got)+tc.extra) {
					t.Errorf("Keystone answered %q with %d users, %d of them named so, want %d more: it matched a pattern",
						tc.typed, r, len(got), tc.extra)
				}
				var gotIDs, wantIDs []string
				for _, u := range got {
					if scope.domainID == "" && u.DomainID != domainID {
						// Another test's user: only exact names may come back.
						if !strings.EqualFold(u.Name, tc.typed) {
							t.Errorf("UsersNamed(%q) found %q of another domain", tc.typed, u.Name)
						}
						continue
					}
					gotIDs = append(gotIDs, u.ID)
				}
				for _, name := range tc.want {
					wantIDs = append(wantIDs, ids[name])
				}
				slices.Sort(gotIDs)
				slices.Sort(wantIDs)
				if !slices.Equal(gotIDs, wantIDs) {
					t.Errorf("UsersNamed(%q) = %+v; want the users %v", tc.typed, got, tc.want)
				}
			})
		}
	}
}
