package client

import "time"

// The admin API's wire types live here, with the client, so that the server
// (internal/setpass) and its callers share one shape while callers import
// only this package, never the server.

// Issued is a new link, as PUT /token answers with Accept: application/json.
type Issued struct {
	Token     string    `json:"token"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// IssueRequest is the body of PUT /token/<user_id>. A nil field was omitted.
type IssueRequest struct {
	Password *string `json:"password"`
	PIN      *string `json:"pin"`
}

// APIError is the body of the admin API's refusals: Keystone's own shape,
// {"error": {"code": 403, "title": "Forbidden", "message": "..."}}, which
// keystoneauth1 (MOC's admin clients) reads into its exceptions.
type APIError struct {
	Error APIErrorDetail `json:"error"`
}

// APIErrorDetail is the "error" object of an APIError.
type APIErrorDetail struct {
	Code    int    `json:"code"`
	Title   string `json:"title"`
	Message string `json:"message"`
}
