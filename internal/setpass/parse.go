package setpass

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"unicode/utf8"

	"github.com/kaizen-onboard/kaizen/internal/pin"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
)

const (
	maxIssueBody = 16 << 10
	maxFormBody  = 16 << 10
	// maxPasswordBytes is Keystone's default max_password_length.
	maxPasswordBytes = 4096
	maxUserIDLen     = 64
)

// errBadRequest marks a request the caller must fix; its message is safe to
// return (it never quotes the request).
var errBadRequest = errors.New("bad request")

func badRequest(msg string) error { return fmt.Errorf("%w: %s", errBadRequest, msg) }

// ParseIssueRequest reads the JSON body; an empty body is a request with
// both fields omitted.
func ParseIssueRequest(body []byte) (client.IssueRequest, error) {
	var req client.IssueRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	if !utf8.Valid(body) {
		return client.IssueRequest{}, badRequest("the body is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		// json's messages may quote the body; say only where it failed.
		return client.IssueRequest{}, badRequest(`the body must be a JSON object {"password": "...", "pin": "NNNN"}`)
	}
	if _, err := dec.Token(); err != io.EOF {
		return client.IssueRequest{}, badRequest("the body holds more than one JSON value")
	}
	if req.PIN != nil && !pin.Valid(*req.PIN) {
		return client.IssueRequest{}, badRequest("pin must be " + pin.Rule)
	}
	if req.Password != nil {
		if err := checkPasswordShape(*req.Password); err != nil {
			return client.IssueRequest{}, err
		}
	}
	return req, nil
}

// checkPasswordShape is what any password must be before it reaches
// Keystone, whoever sends it.
func checkPasswordShape(p string) error {
	switch {
	case p == "":
		return badRequest("password must not be empty")
	case len(p) > maxPasswordBytes:
		return badRequest(fmt.Sprintf("password must be at most %d bytes", maxPasswordBytes))
	case !utf8.ValidString(p):
		return badRequest("password must be UTF-8")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return badRequest("password must not hold control characters")
		}
	}
	return nil
}

// validUserID accepts what Keystone IDs look like (hex, or an LDAP-backed
// ID of letters, digits, '-' and '_'), so nothing odd reaches a URL path.
func validUserID(s string) bool {
	if s == "" || len(s) > maxUserIDLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Form is a submitted password form.
type Form struct {
	Token    string
	PIN      string
	Password string
	Confirm  string
}

// ParseForm reads an application/x-www-form-urlencoded body. A malformed
// body or a token that cannot be ours is an error; a malformed PIN is
// reported by CheckPIN, so the page can say which field is wrong.
func ParseForm(body []byte) (Form, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return Form{}, badRequest("malformed form")
	}
	one := func(key string) (string, error) {
		v := vals[key]
		if len(v) > 1 {
			return "", badRequest("repeated field " + key)
		}
		if len(v) == 0 {
			return "", nil
		}
		return v[0], nil
	}
	var f Form
	for _, fld := range []struct {
		key string
		dst *string
	}{{"token", &f.Token}, {"pin", &f.PIN}, {"password", &f.Password}, {"confirm", &f.Confirm}} {
		if *fld.dst, err = one(fld.key); err != nil {
			return Form{}, err
		}
	}
	if !wellFormedToken(f.Token) {
		return Form{}, badRequest("malformed token")
	}
	return f, nil
}
