package setpass

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestServeAllShutsDownGracefully: on cancel, both listeners stop taking
// requests, and a request in flight on one still gets its answer.
func TestServeAllShutsDownGracefully(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	a, b := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServeAll(ctx, ServeOptions{}, Listener{a, slow}, Listener{b, ok}) }()

	if resp, err := http.Get("http://" + b.Addr().String() + "/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	type result struct {
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + a.Addr().String() + "/")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		inflight <- result{string(body), err}
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("ServeAll returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if r := <-inflight; r.err != nil || r.body != "finished" {
		t.Errorf("the request in flight: %q, %v", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("ServeAll: %v", err)
	}
	for _, ln := range []net.Listener{a, b} {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections", ln.Addr())
		}
	}
}

// TestServeAllStopsWhenOneFails: a listener that cannot serve stops the
// other and is reported.
func TestServeAllStopsWhenOneFails(t *testing.T) {
	good, bad := listen(t), listen(t)
	bad.Close()
	err := ServeAll(context.Background(), ServeOptions{}, Listener{good, http.NotFoundHandler()}, Listener{bad, http.NotFoundHandler()})
	if err == nil || !strings.Contains(err.Error(), "serving on "+bad.Addr().String()) {
		t.Fatalf("ServeAll = %v, want the failing listener named", err)
	}
	if c, err := net.Dial("tcp", good.Addr().String()); err == nil {
		c.Close()
		t.Error("the other listener still accepts connections")
	}
}
