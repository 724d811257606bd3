package setpass

import (
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/pin"
)

func FuzzParseIssueRequest(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"password":"x","pin":"1234"}`, `{"pin":"12345"}`, `{"pin":null}`,
		`{"password":"` + "\x00" + `"}`, `[1]`, `{"password":"x"}{}`, `{"pin":"١٢٣٤"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseIssueRequest(body)
		if err != nil {
			return
		}
		if req.PIN != nil && !pin.Valid(*req.PIN) {
			t.Fatalf("accepted malformed PIN %q", *req.PIN)
		}
		if req.Password != nil && checkPasswordShape(*req.Password) != nil {
			t.Fatalf("accepted malformed password")
		}
	})
}

func FuzzParseForm(f *testing.F) {
	tok := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, s := range []string{"", "token=" + tok + "&pin=1234&password=a&confirm=a", "token=x", "token=" + tok + "&token=" + tok,
		"%zz", "token=" + tok + "&pin=12%00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := ParseForm(body)
		if err != nil {
			return
		}
		if !wellFormedToken(form.Token) {
			t.Fatalf("accepted malformed token %q", form.Token)
		}
		// The PIN is checked separately; it must never pass unless 4 digits.
		if pin.Valid(form.PIN) && (len(form.PIN) != 4 || form.PIN[0] < '0' || form.PIN[0] > '9') {
			t.Fatalf("validPIN accepted %q", form.PIN)
		}
	})
}
