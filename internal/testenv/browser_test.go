package testenv

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserSubmitsForm proves the harness: a real Chromium, at phone size,
// fills in and posts a form, and reads the answer page.
func TestBrowserSubmitsForm(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>form</title>
<form method="post" action="/answer"><label>Name <input id="name" name="name"></label>
<button id="go" type="submit">Send</button></form>`)
	})
	mux.HandleFunc("POST /answer", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><meta name="viewport" content="width=device-width">
<title>answer</title><p id="out">Hello, %s!</p>`, html.EscapeString(r.PostFormValue("name")))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := Browser(t)
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := chromedp.Do(step,
		chromedp.Navigate(srv.URL),
		chromedp.SendKeys(chromedp.ID("name"), "Ada <Lovelace>"),
		chromedp.Click(chromedp.ID("go")),
		chromedp.WaitVisible(chromedp.ID("out")),
	)
	if err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(step, chromedp.Text(chromedp.ID("out")))
	if err != nil {
		t.Fatal(err)
	}
	if out != "Hello, Ada <Lovelace>!" {
		t.Errorf("answer page says %q", out)
	}
	width, err := chromedp.Run(step, chromedp.Evaluate[int]("window.innerWidth"))
	if err != nil {
		t.Fatal(err)
	}
	if width != phoneWidth {
		t.Errorf("viewport %d CSS px wide, want %d", width, phoneWidth)
	}
}
