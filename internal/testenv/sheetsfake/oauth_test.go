package sheetsfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
	"google.golang.org/api/sheets/v4"
)

func TestAuth(t *testing.T) {
	t.Parallel()

	t.Run("JWT signed by another key is refused", func(t *testing.T) {
		t.Parallel()
		f, _ := newFixture(t)
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(other)
		var key map[string]string
		if err := json.Unmarshal(f.ServiceAccountJSON(), &key); err != nil {
			t.Fatal(err)
		}
		key["private_key"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		forged, _ := json.Marshal(key)
		creds, err := google.CredentialsFromJSONWithType(t.Context(), forged, google.ServiceAccount, sheets.SpreadsheetsScope)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := sheets.NewService(t.Context(), option.WithTokenSource(creds.TokenSource), option.WithEndpoint(f.Endpoint()))
		if err != nil {
			t.Fatal(err)
		}
		vr, err := svc.Spreadsheets.Values.Get(testBook, "Sheet1").Context(t.Context()).Do()
		// The api client wraps the token error in cloud.google.com/go/auth's
		// error type, so match on the OAuth error body it carries.
		if err == nil || vr != nil || !strings.Contains(err.Error(), `"error":"invalid_grant","error_description":"Invalid JWT Signature."`) {
			t.Fatalf("Get with forged key = %v, %v; want invalid_grant", vr, err)
		}
		if n := f.TokenExchanges(); n != 0 {
			t.Errorf("TokenExchanges = %d, want 0", n)
		}
		for _, r := range f.Requests() {
			if r.Op != "token" {
				t.Errorf("a Sheets request reached the API: %+v", r)
			}
		}
	})

	t.Run("readonly scope reads but cannot write", func(t *testing.T) {
		t.Parallel()
		f, _ := newFixture(t)
		svc := f.Service(t.Context(), t, sheets.SpreadsheetsReadonlyScope)
		if _, err := svc.Spreadsheets.Values.Get(testBook, "'Form Responses 1'!A1").Context(t.Context()).Do(); err != nil {
			t.Fatalf("read with readonly scope: %v", err)
		}
		_, err := svc.Spreadsheets.Values.Update(testBook, "Sheet1!A1", &sheets.ValueRange{Values: [][]any{{"x"}}}).
			ValueInputOption("RAW").Context(t.Context()).Do()
		wantAPIError(t, err, 403, "Request had insufficient authentication scopes.")
		if got := f.Rows(testBook, "Sheet1"); len(got) != 0 {
			t.Errorf("write with readonly scope landed: %q", got)
		}
	})

	t.Run("revoked tokens get 401", func(t *testing.T) {
		t.Parallel()
		f, svc := newFixture(t)
		if _, err := svc.Spreadsheets.Get(testBook).Context(t.Context()).Do(); err != nil {
			t.Fatal(err)
		}
		f.RevokeTokens()
		_, err := svc.Spreadsheets.Get(testBook).Context(t.Context()).Do()
		wantAPIError(t, err, 401, "Request had invalid authentication credentials.")
	})

	t.Run("request without token gets 401", func(t *testing.T) {
		t.Parallel()
		f, _ := newFixture(t)
		resp, err := http.Get(f.Endpoint() + "v4/spreadsheets/" + testBook)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	// Direct token-endpoint checks with hand-made assertions.
	f := New(t)
	now := time.Now()
	good := claimSet{Iss: f.ServiceAccountEmail(), Aud: f.TokenURL(), Scope: sheets.SpreadsheetsScope, Iat: now.Unix(), Exp: now.Add(time.Hour).Unix()}
	tokenTests := []struct {
		name      string
		grant     string
		mutate    func(*claimSet)
		wantCode  int
		wantError string
	}{
		{name: "valid", wantCode: 200},
		{name: "wrong audience", mutate: func(c *claimSet) { c.Aud = "https://oauth2.googleapis.com/token" }, wantCode: 400, wantError: "invalid_grant"},
		{name: "unknown account", mutate: func(c *claimSet) { c.Iss = "someone@else.iam.gserviceaccount.com" }, wantCode: 400, wantError: "invalid_grant"},
		{name: "expired", mutate: func(c *claimSet) { c.Iat, c.Exp = now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix() }, wantCode: 400, wantError: "invalid_grant"},
		{name: "too long-lived", mutate: func(c *claimSet) { c.Exp = now.Add(2 * time.Hour).Unix() }, wantCode: 400, wantError: "invalid_grant"},
		{name: "issued in the future", mutate: func(c *claimSet) { c.Iat, c.Exp = now.Add(time.Hour).Unix(), now.Add(90*time.Minute).Unix() }, wantCode: 400, wantError: "invalid_grant"},
		{name: "no scope", mutate: func(c *claimSet) { c.Scope = "" }, wantCode: 400, wantError: "invalid_scope"},
		{name: "bogus scope", mutate: func(c *claimSet) { c.Scope = "spreadsheets" }, wantCode: 400, wantError: "invalid_scope"},
		{name: "wrong grant type", grant: "client_credentials", wantCode: 400, wantError: "unsupported_grant_type"},
	}
	var key struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(f.ServiceAccountJSON(), &key); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(key.PrivateKey))
	pk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tokenTests {
		t.Run("token endpoint "+tt.name, func(t *testing.T) {
			c := good
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			assertion := signJWT(t, pk.(*rsa.PrivateKey), c)
			grant := tt.grant
			if grant == "" {
				grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
			}
			resp, err := http.PostForm(f.TokenURL(), url.Values{"grant_type": {grant}, "assertion": {assertion}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode || (tt.wantError != "" && body["error"] != tt.wantError) {
				t.Fatalf("status %d body %v, want %d %s", resp.StatusCode, body, tt.wantCode, tt.wantError)
			}
			if tt.wantCode == 200 && (body["token_type"] != "Bearer" || body["expires_in"] != 3600.0 || body["access_token"] == "") {
				t.Errorf("token response %v", body)
			}
			if tt.wantError != "" && body["error_description"] == "" {
				t.Errorf("no error_description in %v", body)
			}
		})
	}
}

// claimSet is what golang.org/x/oauth2/google puts in a service-account
// assertion; the tests sign their own to send claims the client never would.
type claimSet struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope,omitempty"`
	Aud   string `json:"aud"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
}

// signJWT stands in for the deprecated golang.org/x/oauth2/jws.Encode.
func signJWT(t *testing.T, key *rsa.PrivateKey, c claimSet) string {
	t.Helper()
	segment := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := segment(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + segment(c)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}
