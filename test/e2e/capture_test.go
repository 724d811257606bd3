package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	netmail "net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// Kinds of captured secrets.
const (
	kindToken    = "link token"
	kindLink     = "link"
	kindPassword = "password" // temporary ones, and those users chose
	kindPIN      = "PIN"
	kindKey      = "secret key"
)

// secret is one value that passed through the programs and must never be
// readable from the store.
type secret struct {
	kind, value string
	where       string // where it was first captured, for messages
}

// vault collects every secret the run handled, from every boundary: the
// setpass HTTP API (requests and answers), the Keystone API (request
// bodies), the mail actually delivered, and what the test itself typed.
type vault struct {
	mu      sync.Mutex
	secrets map[string]*secret // by value
}

func newVault() *vault { return &vault{secrets: map[string]*secret{}} }

func (v *vault) add(kind, value, where string) {
	if value == "" {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.secrets[value]; !ok {
		v.secrets[value] = &secret{kind: kind, value: value, where: where}
	}
}

// all returns the secrets in a stable order.
func (v *vault) all() []*secret {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]*secret, 0, len(v.secrets))
	for _, s := range v.secrets {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *secret) int { return strings.Compare(a.kind+a.value, b.kind+b.value) })
	return out
}

func (v *vault) ofKind(kind string) []*secret {
	var out []*secret
	for _, s := range v.all() {
		if s.kind == kind {
			out = append(out, s)
		}
	}
	return out
}

// addLink records a set-password link and its token.
func (v *vault) addLink(link, where string) {
	v.add(kindLink, link, where)
	if u, err := url.Parse(link); err == nil {
		v.add(kindToken, u.Query().Get("token"), where)
	}
}

// bodyJSON reads r's body for inspection and puts it back.
func readBody(body *io.ReadCloser) []byte {
	if *body == nil || *body == http.NoBody {
		return nil
	}
	b, _ := io.ReadAll(*body)
	(*body).Close()
	*body = io.NopCloser(bytes.NewReader(b))
	return b
}

// passwordsIn returns the string values of every key naming a password in
// a JSON document, at any depth.
func passwordsIn(b []byte) []string {
	var doc any
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && strings.Contains(strings.ToLower(k), "password") {
					out = append(out, s)
				}
				walk(val)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

// keystoneRecorder is a transport in front of Keystone and the quota
// services that records every password sent in a request body: the
// temporary passwords kaizen sets, the ones users choose through setpass,
// and the admin's own.
type keystoneRecorder struct {
	base  http.RoundTripper
	vault *vault
	who   string
}

func (k keystoneRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if b := readBody(&r.Body); len(b) > 0 {
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		for _, p := range passwordsIn(b) {
			k.vault.add(kindPassword, p, k.who+": "+r.Method+" "+r.URL.Path)
		}
	}
	return k.base.RoundTrip(r)
}

// tap puts the recorder in front of every request of provider (identity
// and quota clients share it).
func (v *vault) tap(provider *gophercloud.ProviderClient, who string) {
	base := provider.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if _, done := base.(keystoneRecorder); done {
		return
	}
	provider.HTTPClient.Transport = keystoneRecorder{base: base, vault: v, who: who}
}

// teeWriter keeps a copy of what the handler answered.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// tapSetpass records, at setpass's HTTP boundary, the temporary passwords
// and PINs of PUT /token and PUT /reset and the tokens and links they
// answer with (this is how links of mail that is never delivered are
// known), and the tokens, PINs and passwords browsers post.
func (v *vault) tapSetpass(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		where := "setpass " + r.Method + " " + r.URL.Path
		b := readBody(&r.Body)
		isAPI := r.Method == http.MethodPut
		switch {
		case isAPI:
			var req struct {
				Password *string `json:"password"`
				PIN      *string `json:"pin"`
			}
			if json.Unmarshal(b, &req) == nil {
				if req.Password != nil {
					v.add(kindPassword, *req.Password, where)
				}
				if req.PIN != nil {
					v.add(kindPIN, *req.PIN, where)
				}
			}
		case r.Method == http.MethodGet:
			v.add(kindToken, r.URL.Query().Get("token"), where)
		case r.Method == http.MethodPost:
			if f, err := url.ParseQuery(string(b)); err == nil {
				v.add(kindToken, f.Get("token"), where)
				v.add(kindPIN, f.Get("pin"), where)
				v.add(kindPassword, f.Get("password"), where)
			}
		}
		tw := &teeWriter{ResponseWriter: w}
		next.ServeHTTP(tw, r)
		if !isAPI || tw.status != http.StatusOK {
			return
		}
		var issued struct {
			Token string `json:"token"`
			URL   string `json:"url"`
		}
		if json.Unmarshal(tw.body.Bytes(), &issued) == nil && issued.Token != "" {
			v.add(kindToken, issued.Token, where+" (answer)")
			v.addLink(issued.URL, where+" (answer)")
			return
		}
		v.add(kindToken, strings.TrimSpace(tw.body.String()), where+" (answer)")
	})
}

// delivered is one message the SMTP server accepted, decoded.
type delivered struct {
	To      []string
	Subject string
	Text    string
	HTML    string
}

var linkRE = regexp.MustCompile(`https?://[^\s"<>]+\?token=[A-Za-z0-9_-]+`)

// link returns the set-password link of the message, "" if none.
func (d delivered) link() string { return linkRE.FindString(d.Text) }

// parseDelivered decodes what the SMTP server received (transfer encodings
// undone by the multipart reader).
func parseDelivered(t *testing.T, rm testenv.ReceivedMessage) delivered {
	t.Helper()
	msg, err := rm.Parsed()
	if err != nil {
		t.Fatalf("parsing a delivered message: %v", err)
	}
	var d delivered
	d.To = rm.To
	if d.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, _ := io.ReadAll(msg.Body)
		d.Text = string(b)
		return d
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading a part: %v", err)
		}
		b, _ := io.ReadAll(p)
		switch pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt {
		case "text/plain":
			d.Text = strings.ReplaceAll(string(b), "\r\n", "\n")
		case "text/html":
			d.HTML = string(b)
		}
	}
	return d
}

// fromDelivered records the links of every delivered message.
func (v *vault) fromDelivered(t *testing.T, srv *testenv.SMTPServer) []delivered {
	t.Helper()
	var out []delivered
	for _, rm := range srv.Messages() {
		d := parseDelivered(t, rm)
		for _, l := range linkRE.FindAllString(d.Text+"\n"+d.HTML, -1) {
			v.addLink(l, "mail delivered to "+strings.Join(d.To, ","))
		}
		out = append(out, d)
	}
	return out
}

// addressOf is the bare address of a recipient list entry.
func addressOf(s string) string {
	if a, err := netmail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}
