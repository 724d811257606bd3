package setpass

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Page files under templates/pages (and <override>/pages).
const (
	pageDir    = "pages"
	layoutPage = "layout.html"
	styleFile  = "style.css"
)

// Page names; each is <name>.html defining "title" and "content".
const (
	pageForm    = "form"
	pageInvalid = "invalid"
	pageDone    = "done"
	pageProblem = "problem"
	// The self-service reset page and its one answer.
	pageReset     = "reset"
	pageResetSent = "reset-sent"
)

var pageNames = []string{pageForm, pageInvalid, pageDone, pageProblem, pageReset, pageResetSent}

// Branding is what every page shows.
type Branding struct {
	CloudName string
	Support   string // email address
	LoginURL  string // "" leaves the link out
}

// pageData is the dot of every page.
type pageData struct {
	Branding
	Token     string // form only: the link's token, in a hidden field
	MinLength int
	Errors    map[string]string // field ("pin", "password", "confirm", "form") to message
	Heading   string            // problem page
	Message   string            // problem page
	Reset     bool              // form: the link is a password reset
	// ByHelpdesk: the reset pages say the helpdesk will get in touch,
	// rather than that a link is mailed.
	ByHelpdesk bool
}

// Pages are the parsed web pages and the style sheet. Safe for concurrent use.
type Pages struct {
	brand Branding
	pages map[string]*template.Template
	style []byte
}

// LoadPages parses the pages from embedded (the templates FS, which holds
// pages/) with files in overrideDir/pages replacing them by name, and
// renders each once, so a broken override stops start-up with its name.
func LoadPages(embedded fs.FS, overrideDir string, brand Branding) (*Pages, error) {
	read := func(name string) (string, []byte, error) {
		rel := path.Join(pageDir, name)
		if overrideDir != "" {
			full := filepath.Join(overrideDir, pageDir, name)
			b, err := os.ReadFile(full)
			if err == nil {
				return full, b, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", nil, fmt.Errorf("setpass: reading page %s: %w", full, err)
			}
		}
		b, err := fs.ReadFile(embedded, rel)
		if err != nil {
			return "", nil, fmt.Errorf("setpass: reading built-in page %s: %w", rel, err)
		}
		return rel, b, nil
	}
	layoutName, layout, err := read(layoutPage)
	if err != nil {
		return nil, err
	}
	p := &Pages{brand: brand, pages: make(map[string]*template.Template)}
	for _, name := range pageNames {
		fileName, text, err := read(name + ".html")
		if err != nil {
			return nil, err
		}
		t := template.New(fileName).Option("missingkey=zero")
		if _, err := t.New(layoutName).Parse(string(layout)); err != nil {
			return nil, fmt.Errorf("setpass: %w", err)
		}
		if _, err := t.Parse(string(text)); err != nil {
			return nil, fmt.Errorf("setpass: %w", err)
		}
		for _, def := range []string{"layout", "title", "content"} {
			if t.Lookup(def) == nil {
				return nil, fmt.Errorf("setpass: page %s (with %s) does not define %q", fileName, layoutName, def)
			}
		}
		p.pages[name] = t
	}
	if _, p.style, err = read(styleFile); err != nil {
		return nil, err
	}
	example := pageData{Token: "example", MinLength: 12, Heading: "Example", Message: "Example",
		Errors: map[string]string{"form": "x", "pin": "x", "password": "x", "confirm": "x", "email": "x"}}
	for _, name := range pageNames {
		if _, err := p.render(name, example); err != nil {
			return nil, fmt.Errorf("%w (checked with example data at start-up)", err)
		}
	}
	return p, nil
}

// render fills a page; d's Branding is set here.
func (p *Pages) render(name string, d pageData) ([]byte, error) {
	t, ok := p.pages[name]
	if !ok {
		return nil, fmt.Errorf("setpass: unknown page %q", name)
	}
	d.Branding = p.brand
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		return nil, fmt.Errorf("setpass: rendering page %s: %w", name, err)
	}
	return b.Bytes(), nil
}
