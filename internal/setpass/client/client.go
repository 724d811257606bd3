// Package client calls the admin API of a setpass service (PUT /token and
// PUT /reset). It is apart from the server, internal/setpass, so that the
// programs that ask for links do not link the server in.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Errors of Client.Issue, by the service's answer.
var (
	ErrIssueUnauthorized = errors.New("setpass: the admin token was not accepted (401)")
	ErrIssueForbidden    = errors.New("setpass: the admin token is not admin on the admin project (403)")
	ErrIssueUnknownUser  = errors.New("setpass: Keystone does not know the user (404)")
	ErrIssueRejected     = errors.New("setpass: request rejected (400)")
)

// Client calls a setpass service's admin API (addusers uses it).
type Client struct {
	base  *url.URL
	http  *http.Client
	token func(context.Context) (string, error)
}

// New talks to the service at baseURL (config.Setpass.APIURL). token returns a
// Keystone token with the admin role on the admin project, e.g. the admin
// provider client's current token.
func New(baseURL string, httpClient *http.Client, token func(context.Context) (string, error)) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("setpass client: %q is not an http(s) URL", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: u, http: httpClient, token: token}, nil
}

// Issue asks for a new link for userID: it replaces the user's earlier link
// and resets its attempts. tempPassword is required; pin "" keeps the PIN
// of the user's earlier link (or the PIN on file).
func (c *Client) Issue(ctx context.Context, userID, tempPassword, pin string) (Issued, error) {
	if tempPassword == "" {
		return Issued{}, fmt.Errorf("setpass client: issuing a link for %s: %w: a temporary password is required", userID, ErrIssueRejected)
	}
	req := IssueRequest{Password: &tempPassword}
	if pin != "" {
		req.PIN = &pin
	}
	return c.put(ctx, "token", "issuing a link", userID, req)
}

// Errors of Client.Reset besides those of Issue.
var (
	// ErrResetNoPIN: no pin was given and the user has no PIN on file (409).
	ErrResetNoPIN = errors.New("setpass: the user has no PIN on file (409)")
	// ErrResetUnsupported: setpass has no reset credential, so a reset
	// needs a temporary password (501). The PIN was found.
	ErrResetUnsupported = errors.New("setpass: setpass has no reset credential (501)")
)

// Reset asks for a password-reset link for userID (PUT /reset). pin ""
// uses the user's PIN on file; a pin replaces it. tempPassword "" lets
// the link set the password with setpass's reset credential, so the
// current password keeps working until the link is used; otherwise it must
// already be the user's password in Keystone (the fallback after
// ErrResetUnsupported).
func (c *Client) Reset(ctx context.Context, userID, pin, tempPassword string) (Issued, error) {
	var req IssueRequest
	if pin != "" {
		req.PIN = &pin
	}
	if tempPassword != "" {
		req.Password = &tempPassword
	}
	return c.put(ctx, "reset", "asking for a reset link", userID, req)
}

// put sends req to PUT /<path>/<userID> and reads the link.
func (c *Client) put(ctx context.Context, path, doing, userID string, req IssueRequest) (Issued, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Issued{}, fmt.Errorf("setpass client: %w", err)
	}
	tok, err := c.token(ctx)
	if err != nil {
		return Issued{}, fmt.Errorf("setpass client: getting an admin token: %w", err)
	}
	u := c.base.JoinPath(path, userID)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(body))
	if err != nil {
		return Issued{}, fmt.Errorf("setpass client: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("X-Auth-Token", tok)
	resp, err := c.http.Do(hr)
	if err != nil {
		return Issued{}, fmt.Errorf("setpass client: %s for %s: %w", doing, userID, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Issued{}, fmt.Errorf("setpass client: %s for %s: reading the answer: %w", doing, userID, err)
	}
	if resp.StatusCode == http.StatusOK {
		var out Issued
		if err := json.Unmarshal(data, &out); err != nil || out.Token == "" {
			return Issued{}, fmt.Errorf("setpass client: %s for %s: malformed answer", doing, userID)
		}
		return out, nil
	}
	// The service's error messages never quote secrets; show them.
	msg := apiErrorMessage(data)
	var sentinel error
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		if msg == "" { // not the API's answer: the route is missing
			return Issued{}, fmt.Errorf("setpass client: %s for %s: HTTP %d: the service at %s does not serve PUT /%s/ "+
				"(an older setpass, or its public listener while setpass.admin_listen is set: point setpass.admin_url at the admin listener)",
				doing, userID, resp.StatusCode, c.base.Redacted(), path)
		}
		sentinel = ErrIssueUnknownUser
	case http.StatusUnauthorized:
		sentinel = ErrIssueUnauthorized
	case http.StatusForbidden:
		sentinel = ErrIssueForbidden
	case http.StatusBadRequest:
		sentinel = ErrIssueRejected
	case http.StatusConflict:
		sentinel = ErrResetNoPIN
	case http.StatusNotImplemented:
		sentinel = ErrResetUnsupported
	default:
		return Issued{}, fmt.Errorf("setpass client: %s for %s: HTTP %d %s", doing, userID, resp.StatusCode, oneLineMsg(msg))
	}
	return Issued{}, fmt.Errorf("setpass client: %s for %s: %w: %s", doing, userID, sentinel, oneLineMsg(msg))
}

// apiErrorMessage is the message of an APIError body, or of the bare
// {"error": "..."} that setpass answered before it took Keystone's shape;
// "" for anything else.
func apiErrorMessage(data []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || len(e.Error) == 0 {
		return ""
	}
	var d APIErrorDetail
	if json.Unmarshal(e.Error, &d) == nil {
		return d.Message
	}
	var s string
	_ = json.Unmarshal(e.Error, &s)
	return s
}

func oneLineMsg(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
