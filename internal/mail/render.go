// Package mail renders Kaizen's messages from templates, builds them as
// MIME messages and delivers them over SMTP or into a Maildir.
package mail

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
)

// Template file names inside each kind's folder.
const (
	subjectFile = "subject.txt"
	textFile    = "body.txt"
	htmlFile    = "body.html"
)

// Rendered is one message's subject and its two bodies.
type Rendered struct {
	Subject string // one line, whitespace collapsed
	Text    string
	HTML    string
}

// Renderer renders every message kind. It is safe for concurrent use.
type Renderer struct {
	common Common
	kinds  map[string]kindTemplates
}

type kindTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
	view    reflect.Type // of dot: struct{ Common Common; Data <kind's data type> }
}

// NewRenderer parses every template at start-up, so a missing or broken one
// stops the program before any mail is due. Files in overrideDir ("" for
// none) replace embedded ones with the same relative path. Each template is
// also rendered once with Example data, which catches misspelt fields.
func NewRenderer(embedded fs.FS, overrideDir string, common Common) (*Renderer, error) {
	src := templateSource{embedded: embedded}
	if overrideDir != "" {
		if err := checkOverrides(overrideDir); err != nil {
			return nil, err
		}
		src.dir, src.override = overrideDir, os.DirFS(overrideDir)
	}
	textLayout, err := src.read("layout.txt")
	if err != nil {
		return nil, err
	}
	htmlLayout, err := src.read("layout.html")
	if err != nil {
		return nil, err
	}

	r := &Renderer{common: common, kinds: make(map[string]kindTemplates)}
	for _, kind := range Kinds() {
		// Typed rather than "Data any", so a misspelt field is reported
		// against the data type's name.
		kt := kindTemplates{view: reflect.StructOf([]reflect.StructField{
			{Name: "Common", Type: reflect.TypeFor[Common]()},
			{Name: "Data", Type: dataType(kind)},
		})}
		if kt.subject, err = parseText(src, path.Join(kind, subjectFile), nil); err != nil {
			return nil, err
		}
		if kt.text, err = parseText(src, path.Join(kind, textFile), &textLayout); err != nil {
			return nil, err
		}
		if kt.html, err = parseHTML(src, path.Join(kind, htmlFile), htmlLayout); err != nil {
			return nil, err
		}
		r.kinds[kind] = kt
	}
	if err := r.selfTest(); err != nil {
		return nil, err
	}
	return r, nil
}

// Render fills kind's templates with data, which must be the kind's data type
// (WelcomeData for "welcome", ...) or a pointer to it.
func (r *Renderer) Render(kind string, data any) (Rendered, error) {
	kt, ok := r.kinds[kind]
	if !ok {
		return Rendered{}, fmt.Errorf("mail: unknown message kind %q", kind)
	}
	v := reflect.ValueOf(data)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if want := kt.view.Field(1).Type; !v.IsValid() || v.Type() != want {
		return Rendered{}, fmt.Errorf("mail: %s message needs %s data, got %T", kind, want, data)
	}
	dotv := reflect.New(kt.view).Elem()
	dotv.Field(0).Set(reflect.ValueOf(r.common))
	dotv.Field(1).Set(v)
	dot := dotv.Interface()

	var subject, text, html bytes.Buffer
	if err := kt.subject.Execute(&subject, dot); err != nil {
		return Rendered{}, fmt.Errorf("mail: rendering %s subject: %w", kind, err)
	}
	if err := kt.text.ExecuteTemplate(&text, "layout", dot); err != nil {
		return Rendered{}, fmt.Errorf("mail: rendering %s text: %w", kind, err)
	}
	if err := kt.html.ExecuteTemplate(&html, "layout", dot); err != nil {
		return Rendered{}, fmt.Errorf("mail: rendering %s HTML: %w", kind, err)
	}
	out := Rendered{Subject: oneLine(subject.String()), Text: text.String(), HTML: html.String()}
	if out.Subject == "" {
		return Rendered{}, fmt.Errorf("mail: %s subject rendered empty", kind)
	}
	return out, nil
}

// selfTest renders each kind with example data and every link set, so
// conditional parts are exercised too.
func (r *Renderer) selfTest() error {
	full := *r
	fill := func(s *string, example string) {
		if *s == "" {
			*s = example
		}
	}
	fill(&full.common.CloudName, "Example Cloud")
	fill(&full.common.Support, "support@example.org")
	fill(&full.common.LoginURL, "https://dashboard.example.org/")
	fill(&full.common.GettingStartedURL, "https://docs.example.org/")
	fill(&full.common.TermsURL, "https://example.org/terms")
	for _, kind := range Kinds() {
		data, err := Example(kind)
		if err != nil {
			return err
		}
		if _, err := full.Render(kind, data); err != nil {
			return fmt.Errorf("%w (checked with example data at start-up)", err)
		}
	}
	return nil
}

// oneLine keeps a subject on one header line whatever the data held: line
// breaks there would otherwise be a header-injection hole.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func templateFuncs() map[string]any {
	return map[string]any{
		"date":     func(t time.Time) string { return t.Format("Monday 2 January 2006") },
		"datetime": func(t time.Time) string { return t.Format("Monday 2 January 2006 at 15:04 MST") },
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
		"add":      func(a, b int) int { return a + b },
		"resource": resourceLabel,
		"quota":    quotaValue,
	}
}

// parseText parses a text template; with a layout, the file must define
// "content" for it.
func parseText(src templateSource, rel string, layout *templateFile) (*texttemplate.Template, error) {
	f, err := src.read(rel)
	if err != nil {
		return nil, err
	}
	t := texttemplate.New(f.name).Funcs(templateFuncs()).Option("missingkey=error")
	if layout != nil {
		if _, err := t.New(layout.name).Parse(layout.text); err != nil {
			return nil, fmt.Errorf("mail: %w", err)
		}
	}
	if _, err := t.Parse(f.text); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	if layout != nil && t.Lookup("content") == nil {
		return nil, errNoContent(f.name)
	}
	return t, nil
}

func parseHTML(src templateSource, rel string, layout templateFile) (*htmltemplate.Template, error) {
	f, err := src.read(rel)
	if err != nil {
		return nil, err
	}
	t := htmltemplate.New(f.name).Funcs(templateFuncs()).Option("missingkey=error")
	if _, err := t.New(layout.name).Parse(layout.text); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	if _, err := t.Parse(f.text); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	if t.Lookup("content") == nil {
		return nil, errNoContent(f.name)
	}
	return t, nil
}

func errNoContent(name string) error {
	return fmt.Errorf(`mail: template %s: must wrap the message in {{define "content"}} ... {{end}}`, name)
}

// templateSource reads a template from the override directory if it has
// the file, else from the embedded set.
type templateSource struct {
	embedded fs.FS
	override fs.FS // nil without an override directory
	dir      string
}

type templateFile struct {
	name string // where it came from, for error messages
	text string
}

func (s templateSource) read(rel string) (templateFile, error) {
	if s.override != nil {
		name := filepath.Join(s.dir, filepath.FromSlash(rel))
		b, err := fs.ReadFile(s.override, rel)
		if err == nil {
			return templateFile{name: name, text: string(b)}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return templateFile{}, fmt.Errorf("mail: reading template %s: %w", name, err)
		}
	}
	b, err := fs.ReadFile(s.embedded, rel)
	if err != nil {
		return templateFile{}, fmt.Errorf("mail: reading built-in template %s: %w", rel, err)
	}
	return templateFile{name: rel, text: string(b)}, nil
}

// checkOverrides refuses a missing override directory and files in a kind's
// folder that no template uses (body.htm, Subject.txt): silently ignoring
// them would leave an operator wondering why their change has no effect.
func checkOverrides(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mail: templates directory: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("mail: templates directory %s is not a directory", dir)
	}
	known := []string{subjectFile, textFile, htmlFile}
	for _, kind := range Kinds() {
		entries, err := os.ReadDir(filepath.Join(dir, kind))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mail: templates directory: %w", err)
		}
		for _, e := range entries {
			if !slices.Contains(known, e.Name()) {
				return fmt.Errorf("mail: template override %s is not used; a message folder holds only %s",
					filepath.Join(dir, kind, e.Name()), strings.Join(known, ", "))
			}
		}
	}
	return nil
}
