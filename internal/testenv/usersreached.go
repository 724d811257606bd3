package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// UsersReached is an http.RoundTripper that counts the users in Keystone's
// answers to GET /v3/users: what a lookup reached, whatever the caller then
// kept. It wraps a client's transport (Next).
type UsersReached struct {
	Next http.RoundTripper
	n    atomic.Int64
}

// N is the number of users counted since the start or the last Reset.
func (u *UsersReached) N() int64 { return u.n.Load() }

// Reset sets the count to zero.
func (u *UsersReached) Reset() { u.n.Store(0) }

// Take returns the count and sets it to zero.
func (u *UsersReached) Take() int64 { return u.n.Swap(0) }

func (u *UsersReached) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := u.Next.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/users") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var list struct {
		Users []json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(body, &list); err == nil {
		u.n.Add(int64(len(list.Users)))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
