package sheetsfake

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	tokenPath     = "/token"
	jwtBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	tokenLifetime = time.Hour
	clockSkew     = time.Minute
)

// grant is what an issued access token allows, and until when.
type grant struct {
	scopes  []string
	expires time.Time
}

func oauthError(w http.ResponseWriter, code int, errCode, desc string) {
	writeJSON(w, code, map[string]string{"error": errCode, "error_description": desc})
}

func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store") // on errors too, as Google does
	if r.Method != http.MethodPost {
		oauthError(w, 405, "invalid_request", "Token requests must use POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "Malformed form body")
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case jwtBearer:
	case "":
		oauthError(w, 400, "invalid_request", "Missing required parameter: grant_type")
		return
	default:
		oauthError(w, 400, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		oauthError(w, 400, "invalid_request", "Missing required parameter: assertion")
		return
	}
	claims, desc := f.verifyJWT(assertion, time.Now())
	if desc != "" {
		oauthError(w, 400, "invalid_grant", desc)
		return
	}
	scopes := strings.Fields(claims.Scope)
	if len(scopes) == 0 || slices.ContainsFunc(scopes, func(s string) bool {
		return !strings.HasPrefix(s, "https://www.googleapis.com/auth/") && s != "openid" && s != "email" && s != "profile"
	}) {
		oauthError(w, 400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	if claims.Sub != "" {
		// Impersonation needs domain-wide delegation, which the fake never grants.
		oauthError(w, 401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
		return
	}
	token := "ya29.fake-" + randHex(32)
	f.mu.Lock()
	f.tokens[token] = grant{scopes: scopes, expires: time.Now().Add(tokenLifetime)}
	f.tokenExchanges++
	f.mu.Unlock()
	writeJSON(w, 200, map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(tokenLifetime / time.Second),
	})
}

type jwtClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
}

// verifyJWT checks the assertion as Google does and returns Google's
// error_description on failure. It is written independently of
// golang.org/x/oauth2/jws so a bug there cannot hide itself here.
func (f *Fake) verifyJWT(assertion string, now time.Time) (jwtClaims, string) {
	const badSig = "Invalid JWT Signature."
	var claims jwtClaims
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return claims, badSig
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if !decodeSegment(parts[0], &hdr) || !decodeSegment(parts[1], &claims) {
		return claims, badSig
	}
	if claims.Iss != f.email {
		return claims, "Invalid grant: account not found"
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || hdr.Alg != "RS256" || (hdr.Kid != "" && hdr.Kid != f.keyID) {
		return claims, badSig
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&f.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		return claims, badSig
	}
	if claims.Aud != f.TokenURL() {
		return claims, "Invalid JWT: Failed audience check. The right audience is " + f.TokenURL()
	}
	iat, exp := time.Unix(claims.Iat, 0), time.Unix(claims.Exp, 0)
	if claims.Iat == 0 || claims.Exp == 0 || iat.After(now.Add(clockSkew)) || !exp.After(now) ||
		exp.Before(iat) || exp.Sub(iat) > tokenLifetime {
		return claims, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	return claims, ""
}

func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	return err == nil && json.Unmarshal(b, v) == nil
}
