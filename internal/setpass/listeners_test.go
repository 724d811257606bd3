package setpass

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// splitEnv serves NewHandlers on two real listeners through ServeAll.
type splitEnv struct {
	*testEnv
	public, admin string // base URLs
	stop          func() error
}

func newSplitEnv(t *testing.T) *splitEnv {
	t.Helper()
	var deps Deps
	e := newEnvDeps(t, nil, nil, func(_ *testEnv, d *Deps) { deps = *d })
	deps.Registry, deps.Metrics = prometheus.NewRegistry(), nil
	hs, err := NewHandlers(deps)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ServeAll(ctx, ServeOptions{}, Listener{Listener: pub, Handler: hs.Public}, Listener{Listener: adm, Handler: hs.Admin})
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return &splitEnv{testEnv: e, public: "http://" + pub.Addr().String(), admin: "http://" + adm.Addr().String(), stop: stop}
}

type answer struct {
	status      int
	contentType string
	body        string
}

func do(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// TestAdminListenerApart: with the admin API on its own listener, the
// public one knows nothing of it.
func TestAdminListenerApart(t *testing.T) {
	s := newSplitEnv(t)
	unknown := do(t, "GET", s.public+"/no-such-page", "", "")
	if unknown.status != http.StatusNotFound {
		t.Fatalf("unknown path: %d", unknown.status)
	}
	t.Run("public listener", func(t *testing.T) {
		tests := []struct{ name, method, path string }{
			{"PUT /token", "PUT", "/token/" + testUser},
			{"PUT /reset", "PUT", "/reset/" + testUser},
			{"POST /token", "POST", "/token/" + testUser},
			{"GET /token", "GET", "/token/" + testUser},
			{"/metrics", "GET", "/metrics"},
			{"/metrics/ below", "GET", "/metrics/x"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := do(t, tt.method, s.public+tt.path, adminTok, issueBody(tempPass, testPIN))
				if a.status != http.StatusNotFound || a.body != unknown.body {
					t.Errorf("%d %q; want the 404 of an unknown path, %q", a.status, a.body, unknown.body)
				}
			})
		}
		if _, err := s.store.GetTokenByUser(t.Context(), testUser); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the public listener stored a token (%v)", err)
		}
	})
	t.Run("public healthz says up or down, nothing more", func(t *testing.T) {
		a := do(t, "GET", s.public+"/healthz", "", "")
		if a.status != http.StatusOK || strings.TrimSpace(a.body) != `{"status":"ok"}` {
			t.Errorf("%d %s", a.status, a.body)
		}
		s.ks.pingErr = errors.New("keystone down")
		defer func() { s.ks.pingErr = nil }()
		a = do(t, "GET", s.public+"/healthz", "", "")
		if a.status != http.StatusServiceUnavailable || strings.TrimSpace(a.body) != `{"status":"unavailable"}` {
			t.Errorf("%d %s", a.status, a.body)
		}
		a = do(t, "GET", s.admin+"/healthz", "", "")
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, `"keystone":"fail"`) {
			t.Errorf("admin healthz: %d %s", a.status, a.body)
		}
	})
	t.Run("admin listener", func(t *testing.T) {
		a := do(t, "PUT", s.admin+"/token/"+testUser, adminTok, issueBody(tempPass, testPIN))
		if a.status != http.StatusOK || a.body == "" {
			t.Fatalf("PUT /token: %d %s", a.status, a.body)
		}
		// The link it made works on the public listener.
		form := do(t, "GET", s.public+"/?token="+a.body, "", "")
		if form.status != http.StatusOK {
			t.Errorf("the link on the public listener: %d", form.status)
		}
		m := do(t, "GET", s.admin+"/metrics", "", "")
		if m.status != http.StatusOK || !strings.Contains(m.body, "setpass_tokens_issued_total 1") {
			t.Errorf("/metrics: %d, issued count missing", m.status)
		}
		h := do(t, "GET", s.admin+"/healthz", "", "")
		if h.status != http.StatusOK || !strings.Contains(h.body, `"checks"`) {
			t.Errorf("admin healthz: %d %s", h.status, h.body)
		}
		if p := do(t, "GET", s.admin+"/?token="+a.body, "", ""); p.status != http.StatusNotFound {
			t.Errorf("the form on the admin listener: %d", p.status)
		}
	})
	if err := s.stop(); err != nil {
		t.Errorf("ServeAll: %v", err)
	}
	for _, base := range []string{s.public, s.admin} {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after shutdown", base)
		}
	}
}

// TestAPIErrorsAreKeystones: every refusal of the admin API is Keystone's
// error JSON, which keystoneauth1 reads.
func TestAPIErrorsAreKeystones(t *testing.T) {
	for _, mode := range []string{"one listener", "admin listener"} {
		t.Run(mode, func(t *testing.T) {
			var serve func(method, path, token, body string) answer
			if mode == "one listener" {
				e := newEnv(t, nil, nil)
				serve = func(method, path, token, body string) answer {
					r := putReq("", token, body)
					r.Method, r.URL.Path = method, path
					w := e.serve(r)
					return answer{w.Code, w.Header().Get("Content-Type"), w.Body.String()}
				}
			} else {
				s := newSplitEnv(t)
				serve = func(method, path, token, body string) answer { return do(t, method, s.admin+path, token, body) }
			}
			tests := []struct {
				name, path, token, body string
				status                  int
			}{
				{"no token", "/token/" + testUser, "", issueBody(tempPass, testPIN), http.StatusUnauthorized},
				{"bad token", "/token/" + testUser, "nonsense", issueBody(tempPass, testPIN), http.StatusUnauthorized},
				{"not admin", "/token/" + testUser, memberTok, issueBody(tempPass, testPIN), http.StatusForbidden},
				{"unknown user", "/token/0000000000000000000000000000dead", adminTok, issueBody(tempPass, testPIN), http.StatusNotFound},
				{"bad body", "/token/" + testUser, adminTok, `{"pin": 12}`, http.StatusBadRequest},
				{"no password", "/token/" + testUser, adminTok, `{"pin": "1234"}`, http.StatusBadRequest},
				{"reset: no token", "/reset/" + testUser, "", `{"pin": "1234"}`, http.StatusUnauthorized},
				{"reset: not admin", "/reset/" + testUser, memberTok, `{"pin": "1234"}`, http.StatusForbidden},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					a := serve("PUT", tt.path, tt.token, tt.body)
					if a.status != tt.status {
						t.Fatalf("%d %s, want %d", a.status, a.body, tt.status)
					}
					if a.contentType != "application/json" {
						t.Errorf("Content-Type %q", a.contentType)
					}
					var e struct {
						Error *struct {
							Code    *int    `json:"code"`
							Title   *string `json:"title"`
							Message *string `json:"message"`
						} `json:"error"`
					}
					if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error == nil ||
						e.Error.Code == nil || e.Error.Title == nil || e.Error.Message == nil {
						t.Fatalf("not Keystone's error shape (%v): %s", err, a.body)
					}
					if *e.Error.Code != tt.status || *e.Error.Title != http.StatusText(tt.status) || *e.Error.Message == "" {
						t.Errorf("error = %d %q %q", *e.Error.Code, *e.Error.Title, *e.Error.Message)
					}
				})
			}
		})
	}
}
