package e2e

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// A browser, as far as setpass's pages need one: it loads a page, fills
// in the visible fields of its form, sends every hidden one back (a
// CSRF token included, should the pages grow one) to the form's action,
// from the page's own origin as browsers mark same-origin posts.

var (
	formRE   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	actionRE = regexp.MustCompile(`(?i)\baction="([^"]*)"`)
	inputRE  = regexp.MustCompile(`(?i)<input\b[^>]*>`)
	attrRE   = regexp.MustCompile(`(?i)\b(type|name|value)="([^"]*)"`)
)

type page struct {
	url    *url.URL
	status int
	body   string
}

func get(t *testing.T, raw string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Site", "none") // typed or clicked in a mail
	return do(t, req)
}

func do(t *testing.T, req *http.Request) page {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{url: resp.Request.URL, status: resp.StatusCode, body: string(b)}
}

// submit fills fields into the page's form and posts it.
func (p page) submit(t *testing.T, fields map[string]string) page {
	t.Helper()
	m := formRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no form on the page %s (%d):\n%s", p.url.Path, p.status, p.body)
	}
	action := p.url
	if a := actionRE.FindStringSubmatch(m[1]); a != nil {
		u, err := p.url.Parse(html.UnescapeString(a[1]))
		if err != nil {
			t.Fatal(err)
		}
		action = u
	}
	form := url.Values{}
	for _, in := range inputRE.FindAllString(m[2], -1) {
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(in, -1) {
			attrs[strings.ToLower(a[1])] = html.UnescapeString(a[2])
		}
		if attrs["name"] == "" {
			continue
		}
		if strings.EqualFold(attrs["type"], "hidden") {
			form.Set(attrs["name"], attrs["value"])
		}
	}
	for k, v := range fields {
		if !strings.Contains(m[2], `name="`+k+`"`) {
			t.Fatalf("the form on %s has no field %q", p.url.Path, k)
		}
		form.Set(k, v)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", p.url.Scheme+"://"+p.url.Host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return do(t, req)
}

// completeLink opens a set-password link and sets password with the PIN;
// it returns the status of the answer to the form.
func completeLink(t *testing.T, link, pin, password string) int {
	t.Helper()
	p := get(t, link)
	if p.status != http.StatusOK {
		t.Errorf("GET %s: %d, want the password form", redact(link), p.status)
		return p.status
	}
	return p.submit(t, map[string]string{"pin": pin, "password": password, "confirm": password}).status
}

// redact keeps a link's shape for messages without its token.
func redact(link string) string {
	if i := strings.Index(link, "token="); i >= 0 && len(link) > i+10 {
		return link[:i+10] + "…"
	}
	return link
}
