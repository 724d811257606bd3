package mail

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kaizen-onboard/kaizen/templates"
)

const pinWording = "the 4-digit PIN you chose on the sign-up form"

func TestRenderEscapesHTML(t *testing.T) {
	t.Parallel()
	r := newTestRenderer(t, testCommon())
	data := WelcomeData{Name: `<script>alert("x")</script>`, Username: "a&b", Link: "https://setpass.example.org/r/1", ExpiresAt: testNow}
	got, err := r.Render(KindWelcome, data)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if strings.Contains(got.HTML, "<script>") {
		t.Errorf("HTML contains an unescaped <script>:\n%s", got.HTML)
	}
	if !strings.Contains(got.HTML, "&lt;script&gt;") || !strings.Contains(got.HTML, "a&amp;b") {
		t.Errorf("HTML lacks the escaped values:\n%s", got.HTML)
	}
	if !strings.Contains(got.Text, data.Name) {
		t.Errorf("text body should carry the name verbatim:\n%s", got.Text)
	}
}

func TestRenderUnsafeLink(t *testing.T) {
	t.Parallel()
	r := newTestRenderer(t, testCommon())
	got, err := r.Render(KindPasswordReset, PasswordResetData{Name: "Ada", Link: "javascript:alert(1)", ExpiresAt: testNow})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if strings.Contains(got.HTML, `href="javascript:`) {
		t.Errorf("HTML links to a javascript: URL:\n%s", got.HTML)
	}
}

func TestRenderLinks(t *testing.T) {
	t.Parallel()
	links := []string{"https://dashboard.example.org/", "https://docs.example.org/getting-started", "https://example.org/terms"}
	noLinks := testCommon()
	noLinks.LoginURL, noLinks.GettingStartedURL, noLinks.TermsURL = "", "", ""
	tests := []struct {
		name   string
		common Common
		want   bool
	}{
		{name: "shown when configured", common: testCommon(), want: true},
		{name: "left out when empty", common: noLinks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, _ := Example(KindWelcome)
			got, err := newTestRenderer(t, tt.common).Render(KindWelcome, data)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			for _, body := range []string{got.Text, got.HTML} {
				for _, l := range links {
					if strings.Contains(body, l) != tt.want {
						t.Errorf("body contains %s = %v, want %v:\n%s", l, !tt.want, tt.want, body)
					}
				}
				for _, phrase := range []string{"Once your password is set", "getting-started guide", "terms of use"} {
					if strings.Contains(body, phrase) != tt.want {
						t.Errorf("body mentions %q = %v, want %v", phrase, !tt.want, tt.want)
					}
				}
				if strings.Contains(body, `href=""`) {
					t.Errorf("body has an empty link")
				}
			}
		})
	}
}

func TestRenderPINWording(t *testing.T) {
	t.Parallel()
	r := newTestRenderer(t, testCommon())
	for _, kind := range []string{KindWelcome, KindPasswordReset, KindLinkReminder} {
		t.Run(kind, func(t *testing.T) {
			data, _ := Example(kind)
			got, err := r.Render(kind, data)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if !strings.Contains(got.Text, pinWording) || !strings.Contains(got.HTML, pinWording) {
				t.Errorf("%s does not say %q", kind, pinWording)
			}
		})
	}
}

func TestRenderData(t *testing.T) {
	t.Parallel()
	r := newTestRenderer(t, testCommon())
	welcome, _ := Example(KindWelcome)
	w := welcome.(WelcomeData)
	tests := []struct {
		name    string
		kind    string
		data    any
		wantErr string
	}{
		{name: "value", kind: KindWelcome, data: w},
		{name: "pointer", kind: KindWelcome, data: &w},
		{name: "wrong type", kind: KindWelcome, data: PasswordResetData{}, wantErr: "needs mail.WelcomeData data, got mail.PasswordResetData"},
		{name: "nil", kind: KindWelcome, data: nil, wantErr: "needs mail.WelcomeData"},
		{name: "nil pointer", kind: KindWelcome, data: (*WelcomeData)(nil), wantErr: "needs mail.WelcomeData"},
		{name: "unknown kind", kind: "farewell", data: w, wantErr: `unknown message kind "farewell"`},
		{name: "empty digest", kind: KindApproverDigest, data: ApproverDigestData{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Render(tt.kind, tt.data)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Render error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// embeddedCopy returns the built-in templates as a MapFS to tamper with.
func embeddedCopy(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(templates.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templates.FS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// overrideDir writes files (relative path -> content) into a new directory.
func overrideDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestNewRendererErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		embedded func(fstest.MapFS)
		override map[string]string // nil: no override directory
		missing  bool              // override directory does not exist
		wantErr  []string          // substrings of the error
	}{
		{name: "missing built-in file", embedded: func(m fstest.MapFS) { delete(m, "quota-changed/body.html") },
			wantErr: []string{"quota-changed/body.html"}},
		{name: "broken built-in file", embedded: func(m fstest.MapFS) { m["welcome/subject.txt"].Data = []byte("Hi {{.Data.Name") },
			wantErr: []string{"welcome/subject.txt"}},
		{name: "broken layout", embedded: func(m fstest.MapFS) { m["layout.html"].Data = []byte("{{define \"layout\"}}{{if}}{{end}}") },
			wantErr: []string{"layout.html"}},
		{name: "broken override", override: map[string]string{"welcome/body.html": `{{define "content"}}<p>{{.Data.Name}</p>{{end}}`},
			wantErr: []string{filepath.Join("welcome", "body.html")}},
		{name: "override with a misspelt field", override: map[string]string{"link-reminder/body.txt": `{{define "content"}}{{.Data.Lnk}}{{end}}`},
			wantErr: []string{filepath.Join("link-reminder", "body.txt"), "Lnk"}},
		{name: "override without content", override: map[string]string{"welcome/body.txt": "Hello {{.Data.Name}}"},
			wantErr: []string{filepath.Join("welcome", "body.txt"), `define "content"`}},
		{name: "override file no template uses", override: map[string]string{"welcome/body.htm": "x"},
			wantErr: []string{filepath.Join("welcome", "body.htm"), "not used"}},
		{name: "override directory missing", missing: true, wantErr: []string{"templates directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			embedded := embeddedCopy(t)
			if tt.embedded != nil {
				tt.embedded(embedded)
			}
			dir := ""
			switch {
			case tt.missing:
				dir = filepath.Join(t.TempDir(), "absent")
			case tt.override != nil:
				dir = overrideDir(t, tt.override)
				tt.wantErr = append(tt.wantErr, dir) // names the operator's file
			}
			_, err := NewRenderer(embedded, dir, testCommon())
			t.Logf("error: %v", err)
			if err == nil {
				t.Fatal("NewRenderer succeeded, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error = %v, want it to mention %q", err, want)
				}
			}
		})
	}
}

func TestRendererOverride(t *testing.T) {
	t.Parallel()
	dir := overrideDir(t, map[string]string{
		"welcome/subject.txt": "Hi {{.Data.Name}}, welcome to {{.Common.CloudName}}\n",
		"layout.txt":          "{{define \"layout\"}}{{template \"content\" .}}-- \nOverridden footer\n{{end}}",
		"pages/index.html":    "setpass pages may live here too",
	})
	r, err := NewRenderer(templates.FS, dir, testCommon())
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	data, _ := Example(KindWelcome)
	got, err := r.Render(KindWelcome, data)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if want := "Hi Ada Lovelace, welcome to Example Research Cloud"; got.Subject != want {
		t.Errorf("Subject = %q, want %q", got.Subject, want)
	}
	if !strings.HasSuffix(got.Text, "-- \nOverridden footer\n") || !strings.Contains(got.Text, pinWording) {
		t.Errorf("text should use the built-in body in the overridden layout:\n%s", got.Text)
	}
	if !strings.Contains(got.HTML, "Set your password") {
		t.Errorf("HTML should be the built-in one:\n%s", got.HTML)
	}
}
