package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	bsquotas "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
)

// TestCountingCloudKeystone authenticates through the proxy with gophercloud
// against the real dev cloud and checks what was counted.
func TestCountingCloudKeystone(t *testing.T) {
	t.Parallel()
	cc := NewCountingCloud(t)
	ks := Keystone(t)
	RequireQuotaService(t, "compute")
	running := strings.Split(os.Getenv(quotaServicesEnv), ",") // checked too if running
	ctx := t.Context()

	// Set up directly against Keystone: not counted.
	domainID, _ := ks.Domain(t)
	project, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{
		DomainID: domainID, Name: "counted",
	}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	if n := cc.Counts()["identity"].Requests(); n != 0 {
		t.Fatalf("identity requests before any client used the proxy = %d, want 0", n)
	}

	opts := ks.AdminAuthOptions()
	opts.IdentityEndpoint = cc.AuthURL
	provider, err := openstack.AuthenticatedClient(ctx, opts)
	if err != nil {
		t.Fatalf("authenticate through %s: %v", cc.AuthURL, err)
	}
	region := os.Getenv("OS_REGION_NAME")
	if region == "" {
		region = "RegionOne"
	}
	eo := gophercloud.EndpointOpts{Region: region}
	identity, err := openstack.NewIdentityV3(provider, eo) // from the catalog
	if err != nil {
		t.Fatalf("identity client: %v", err)
	}
	compute, err := openstack.NewComputeV2(provider, eo)
	if err != nil {
		t.Fatalf("compute client: %v", err)
	}
	clients := map[string]*gophercloud.ServiceClient{"identity": identity, "compute": compute}
	if slices.Contains(running, "block-storage") {
		if clients["block-storage"], err = openstack.NewBlockStorageV3(provider, eo); err != nil {
			t.Fatalf("block-storage client: %v", err)
		}
	}
	if slices.Contains(running, "network") {
		if clients["network"], err = openstack.NewNetworkV2(provider, eo); err != nil {
			t.Fatalf("network client: %v", err)
		}
	}
	for name, client := range clients {
		origin := cc.ProxyOrigin(name)
		if origin == "" || !strings.HasPrefix(client.Endpoint, origin+"/") {
			t.Errorf("%s endpoint from the catalog = %s, want one on the proxy %q", name, client.Endpoint, origin)
		}
	}
	if bs := clients["block-storage"]; bs != nil && strings.Contains(bs.Endpoint, "%(") {
		t.Errorf("block-storage endpoint %s still has a template", bs.Endpoint)
	}

	pages, err := projects.List(identity, projects.ListOpts{DomainID: domainID}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list projects: %v", err)
	}
	if ps, err := projects.ExtractProjects(pages); err != nil || len(ps) != 1 || ps[0].ID != project.ID {
		t.Fatalf("projects in the domain = %v, %v; want just %s", ps, err, project.ID)
	}
	if _, err := computequotas.Get(ctx, compute, project.ID).Extract(); err != nil {
		t.Fatalf("get compute quotas: %v", err)
	}
	if bs := clients["block-storage"]; bs != nil {
		if _, err := bsquotas.Get(ctx, bs, project.ID).Extract(); err != nil {
			t.Fatalf("get block-storage quotas: %v", err)
		}
	}

	counts := cc.Counts()
	id, comp := counts["identity"], counts["compute"]
	t.Logf("identity: %+v", id)
	t.Logf("compute: %+v", comp)
	if id.Auth != 1 || id.Reads < 1 || id.Writes != 0 {
		t.Errorf("identity auth, reads, writes = %d, %d, %d; want 1, >= 1, 0", id.Auth, id.Reads, id.Writes)
	}
	if id.ByPath["POST /v3/auth/tokens"] != 1 || id.ByPath["GET /v3/projects"] < 1 {
		t.Errorf("identity by path = %v, want POST /v3/auth/tokens once and GET /v3/projects", id.ByPath)
	}
	if comp.Reads != 1 || comp.Writes != 0 || comp.Auth != 0 {
		t.Errorf("compute reads, writes, auth = %d, %d, %d; want 1, 0, 0", comp.Reads, comp.Writes, comp.Auth)
	}
	if comp.ByPath["GET /v2.1/os-quota-sets/{id}"] != 1 || comp.ByStatus[http.StatusOK] != 1 {
		t.Errorf("compute by path = %v, by status = %v; want GET /v2.1/os-quota-sets/{id} once, 200",
			comp.ByPath, comp.ByStatus)
	}
	if bs := counts["block-storage"]; clients["block-storage"] != nil &&
		bs.ByPath["GET /v3/{id}/os-quota-sets/{id}"] != 1 {
		t.Errorf("block-storage by path = %v, want GET /v3/{id}/os-quota-sets/{id} once", bs.ByPath)
	}
	for _, name := range []string{"identity", "compute"} {
		s := counts[name]
		if s.ServiceTime <= 0 || s.BusyTime <= 0 || s.BusyTime > s.ServiceTime {
			t.Errorf("%s service time %v, busy time %v: want 0 < busy <= service", name, s.ServiceTime, s.BusyTime)
		}
	}
	if id.AuthTime <= 0 || id.AuthTime >= id.ServiceTime {
		t.Errorf("identity auth time %v, service time %v: want 0 < auth < service", id.AuthTime, id.ServiceTime)
	}

	cc.Reset()
	for name, s := range cc.Counts() {
		if s.Requests() != 0 || s.ServiceTime != 0 || s.BusyTime != 0 || len(s.ByPath) != 0 || len(s.ByMethod) != 0 {
			t.Errorf("%s after Reset = %+v, want zero", name, s)
		}
	}
	if _, err := computequotas.Get(ctx, compute, project.ID).Extract(); err != nil {
		t.Fatalf("get compute quotas after Reset: %v", err)
	}
	if comp := cc.Counts()["compute"]; comp.Reads != 1 {
		t.Errorf("compute reads after Reset and one GET = %d, want 1", comp.Reads)
	}

	env := cc.Env()
	if !slices.Contains(env, "OS_AUTH_URL="+cc.AuthURL) {
		t.Errorf("Env() lacks OS_AUTH_URL=%s", cc.AuthURL)
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "OS_AUTH_URL=") && kv != "OS_AUTH_URL="+cc.AuthURL {
			t.Errorf("Env() keeps %s", kv)
		}
	}
}

// TestCountingCloudOpenstackCLI runs scripts/bench-openstack-cli for one row
// with Env(): every CLI invocation must authenticate through the proxy and
// find the quota services through it.
func TestCountingCloudOpenstackCLI(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	if testing.Short() && !ci {
		t.Skip("runs the openstack CLI five times (~6 s)")
	}
	t.Parallel()
	if _, err := exec.LookPath("openstack"); err != nil {
		if ci {
			t.Fatalf("the openstack CLI is not installed (python3-openstackclient): %v; CI=true, so this fails instead of skipping", err)
		}
		t.Skipf("the openstack CLI is not installed (python3-openstackclient): %v", err)
	}
	cc := NewCountingCloud(t)
	ks := Keystone(t)
	for _, s := range []string{"compute", "block-storage", "network"} {
		RequireQuotaService(t, s) // the CLI's quota set needs all three
	}
	// The quotas set in Nova, Cinder and Neutron outlive the domain's
	// projects (CLI 6.0 has no `quota delete`): a few stray rows per run.
	_, domain := ks.Domain(t)
	cmd := exec.CommandContext(t.Context(), "../../scripts/bench-openstack-cli", "1", domain)
	cmd.Env = cc.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/bench-openstack-cli: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))

	counts := cc.Counts()
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		s := counts[name]
		t.Logf("%s: reads %d, writes %d, auth %d, service %v, busy %v, by path %v, by status %v",
			name, s.Reads, s.Writes, s.Auth, s.ServiceTime.Round(time.Millisecond),
			s.BusyTime.Round(time.Millisecond), s.ByPath, s.ByStatus)
		for status, n := range s.ByStatus {
			if status == 0 || status >= 500 {
				t.Errorf("%s: %d responses with status %d", name, n, status)
			}
		}
	}
	// domain create --or-show, then project create, user create, role add
	// and quota set: each a process that authenticates once.
	if id := counts["identity"]; id.Auth != 5 || id.Writes < 3 {
		t.Errorf("identity auth, writes = %d, %d; want 5 (one per CLI run), >= 3", id.Auth, id.Writes)
	}
	for _, name := range []string{"compute", "block-storage", "network"} {
		if counts[name].Writes < 1 {
			t.Errorf("%s writes = %d, want >= 1: did the CLI reach it through the proxy?", name, counts[name].Writes)
		}
	}
}

// TestCountingCloudRewrite runs the proxies in front of fake upstreams: the
// rewriting of URLs, the classification and the timing, under concurrency.
func TestCountingCloudRewrite(t *testing.T) {
	t.Parallel()
	const delay = 20 * time.Millisecond
	var computeURL, identityURL string
	identity := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/tokens":
			w.Header().Set("X-Subject-Token", "tok")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"token": {"catalog": [`+
				`{"type": "identity", "endpoints": [{"interface": "public", "url": "`+identityURL+`/v3"}]},`+
				`{"type": "compute", "endpoints": [{"interface": "public", "url": "`+computeURL+`/v2.1"}]},`+
				`{"type": "other", "endpoints": [{"interface": "public", "url": "`+computeURL+`0/x"}]}`+
				`]}}`)
		case r.URL.Path == "/":
			w.Header().Set("Location", identityURL+"/v3/")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMultipleChoices)
			io.WriteString(w, `{"versions": {"values": [{"links": [{"href": "`+identityURL+`/v3/"}]}]}}`)
		default:
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, identityURL) // not JSON: left alone
		}
	}))
	defer identity.Close()
	compute := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		io.WriteString(w, `{"links": [{"href": "`+computeURL+`"}], "id": "`+strings.TrimPrefix(r.URL.Path, "/v2.1/os-quota-sets/")+`"}`)
	}))
	defer compute.Close()
	identityURL, computeURL = identity.URL, compute.URL

	cc, err := newCountingCloud(identityURL+"/v3", map[string][]string{
		"identity": {identityURL}, "compute": {computeURL},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.close()
	if want := cc.ProxyOrigin("identity") + "/v3"; cc.AuthURL != want {
		t.Errorf("AuthURL = %s, want %s", cc.AuthURL, want)
	}
	pid, pcomp := cc.ProxyOrigin("identity"), cc.ProxyOrigin("compute")

	do := func(method, url string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ContentLength >= 0 && resp.ContentLength != int64(len(body)) {
			t.Errorf("%s %s: Content-Length %d, body %d bytes", method, url, resp.ContentLength, len(body))
		}
		return resp, string(body)
	}

	resp, body := do(http.MethodPost, cc.AuthURL+"/auth/tokens")
	var tok struct {
		Token struct {
			Catalog []struct {
				Type      string
				Endpoints []struct{ URL string }
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		t.Fatalf("token body %q: %v", body, err)
	}
	got := map[string]string{}
	for _, e := range tok.Token.Catalog {
		got[e.Type] = e.Endpoints[0].URL
	}
	want := map[string]string{"identity": pid + "/v3", "compute": pcomp + "/v2.1", "other": computeURL + "0/x"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("catalog %s = %q, want %q", k, got[k], v)
		}
	}
	if resp.Header.Get("X-Subject-Token") != "tok" || resp.StatusCode != http.StatusCreated {
		t.Errorf("token response %s, X-Subject-Token %q", resp.Status, resp.Header.Get("X-Subject-Token"))
	}

	resp, body = do(http.MethodGet, pid+"/")
	if loc := resp.Header.Get("Location"); loc != pid+"/v3/" {
		t.Errorf("Location = %s, want %s/v3/", loc, pid)
	}
	if !strings.Contains(body, `"`+pid+`/v3/"`) || strings.Contains(body, identityURL) {
		t.Errorf("discovery body not rewritten: %s", body)
	}
	if _, body = do(http.MethodGet, pid+"/text"); body != identityURL {
		t.Errorf("text body = %q, want it untouched (%q)", body, identityURL)
	}

	// Concurrent requests to compute: 8 reads and 4 writes.
	const projectID = "0d5f2b4c8e6a4f1b9c3d7e2a1b4c6d8e"
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			method := http.MethodGet
			if i%3 == 0 {
				method = http.MethodPut
			}
			_, body := do(method, pcomp+"/v2.1/os-quota-sets/"+projectID)
			if method == http.MethodGet && body != `{"links": [{"href": "`+pcomp+`"}], "id": "`+projectID+`"}` {
				t.Errorf("compute body = %s", body)
			}
		})
	}
	wg.Wait()

	counts := cc.Counts()
	id, comp := counts["identity"], counts["compute"]
	if id.Auth != 1 || id.Reads != 2 || id.Writes != 0 || id.ByMethod["POST"] != 1 || id.ByMethod["GET"] != 2 {
		t.Errorf("identity = %+v, want 1 auth, 2 reads", id)
	}
	if id.AuthTime <= 0 || id.AuthTime > id.ServiceTime {
		t.Errorf("identity auth time %v, service time %v", id.AuthTime, id.ServiceTime)
	}
	if comp.Reads != 8 || comp.Writes != 4 || comp.Auth != 0 {
		t.Errorf("compute reads, writes, auth = %d, %d, %d; want 8, 4, 0", comp.Reads, comp.Writes, comp.Auth)
	}
	wantPaths := map[string]int{"GET /v2.1/os-quota-sets/{id}": 8, "PUT /v2.1/os-quota-sets/{id}": 4}
	if !maps.Equal(comp.ByPath, wantPaths) {
		t.Errorf("compute by path = %v, want %v", comp.ByPath, wantPaths)
	}
	if comp.ByStatus[200] != 8 || comp.ByStatus[202] != 4 {
		t.Errorf("compute by status = %v", comp.ByStatus)
	}
	if comp.ServiceTime < 12*delay {
		t.Errorf("compute service time %v, want >= %v", comp.ServiceTime, 12*delay)
	}
	if comp.BusyTime < delay || comp.BusyTime > comp.ServiceTime {
		t.Errorf("compute busy time %v, want between %v and the service time %v", comp.BusyTime, delay, comp.ServiceTime)
	}
	t.Logf("compute: service %v, busy %v over 12 concurrent requests of %v", comp.ServiceTime, comp.BusyTime, delay)

	// An unreachable upstream: 502, counted with status 0.
	compute.Close()
	if resp, _ := do(http.MethodGet, pcomp+"/v2.1"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("unreachable upstream: %s, want 502", resp.Status)
	}
	if s := cc.Counts()["compute"].ByStatus[0]; s != 1 {
		t.Errorf("compute requests with no response = %d, want 1", s)
	}

	cc.Reset()
	for name, s := range cc.Counts() {
		if s.Requests() != 0 || s.ServiceTime != 0 || s.AuthTime != 0 || s.BusyTime != 0 ||
			len(s.ByPath)+len(s.ByMethod)+len(s.ByStatus) != 0 {
			t.Errorf("%s after Reset = %+v, want zero", name, s)
		}
	}
}

func TestCountingCloudNormalisePath(t *testing.T) {
	for in, want := range map[string]string{
		"/v3/auth/tokens": "/v3/auth/tokens",
		"/v3/projects/0d5f2b4c8e6a4f1b9c3d7e2a1b4c6d8e":            "/v3/projects/{id}",
		"/v2.1/os-quota-sets/4b0c5e6a-1f2d-4e3c-9a8b-7c6d5e4f3a2b": "/v2.1/os-quota-sets/{id}",
		"/v3/abc123def456/os-quota-sets/abc123def456":              "/v3/{id}/os-quota-sets/{id}",
		"/v3/projects/cli-proj-17":                                 "/v3/projects/{id}",
		"/v3/domains/default":                                      "/v3/domains/default",
		"/v2.0/quotas/42":                                          "/v2.0/quotas/{id}",
		"/":                                                        "/",
	} {
		if got := normaliseAPIPath(in); got != want {
			t.Errorf("normaliseAPIPath(%q) = %q, want %q", in, got, want)
		}
	}
}
