package setpass

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// Environment of a setpass child process (see TestSetpassHelperProcess).
const (
	procEnvMode        = "KAIZEN_SETPASS_HELPER" // "serve"; unset in a normal test run
	procEnvStore       = "KAIZEN_SETPASS_HELPER_STORE"
	procEnvSecret      = "KAIZEN_SETPASS_HELPER_SECRET"
	procEnvChanges     = "KAIZEN_SETPASS_HELPER_CHANGES" // file the fake Keystone appends to
	procEnvMaxAttempts = "KAIZEN_SETPASS_HELPER_MAX_ATTEMPTS"

	procAddrPrefix = "setpass listening on "
	procTimeout    = 2 * time.Minute
)

// TestTwoProcessesOneToken runs two setpass processes on one database and
// sends both of them, at once, many correct submissions for one link: the
// password must be changed exactly once, by exactly one process.
func TestTwoProcessesOneToken(t *testing.T) {
	const submissions = 20
	sqlite := func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "kaizen.db") }
	tests := []struct {
		name     string
		storeURL func(t testing.TB) string
		// 5 is the default; a limit the race cannot reach leaves every
		// submission to ConsumeToken alone.
		maxAttempts int
	}{
		{"postgres", testenv.Postgres, 5},
		{"postgres, attempt limit out of reach", testenv.Postgres, submissions + 1},
		// SQLite is supported for several programs on one host.
		{"sqlite, attempt limit out of reach", sqlite, submissions + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbURL := tt.storeURL(t)
			// Migrate before the children start, so they race on the link only.
			st, err := store.Open(t.Context(), dbURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			changes := filepath.Join(t.TempDir(), "keystone-changes")
			env := []string{procEnvMode + "=serve", procEnvStore + "=" + dbURL, procEnvSecret + "=" + testSecret,
				procEnvChanges + "=" + changes, procEnvMaxAttempts + "=" + strconv.Itoa(tt.maxAttempts)}
			kids := []*setpassChild{startSetpassChild(t, env), startSetpassChild(t, env)}

			client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: submissions}}
			t.Cleanup(client.CloseIdleConnections)
			token := procIssue(t, client, kids[0].base)

			type answer struct {
				child, status int
				body          string
			}
			answers := make([]answer, submissions)
			release := make(chan struct{})
			var ready, done sync.WaitGroup
			for i := range submissions {
				ready.Add(1)
				done.Go(func() {
					k := i % len(kids)
					answers[i].child = k
					// Both processes show the form; this also opens the
					// connection, so the POSTs leave together.
					answers[i].status, answers[i].body = procDo(client, http.MethodGet, kids[k].base+"?token="+url.QueryEscape(token), "")
					ready.Done()
					if answers[i].status != http.StatusOK {
						return
					}
					<-release
					p := fmt.Sprintf("%s %02d", goodPass, i)
					form := url.Values{"token": {token}, "pin": {testPIN}, "password": {p}, "confirm": {p}}
					answers[i].status, answers[i].body = procDo(client, http.MethodPost, kids[k].base, form.Encode())
				})
			}
			ready.Wait()
			close(release)
			done.Wait()

			winners, perChild := []int{}, make([]int, len(kids))
			for i, a := range answers {
				switch {
				case a.status == http.StatusOK && strings.Contains(a.body, "Your password is set"):
					winners = append(winners, i)
					perChild[a.child]++
				case a.status == http.StatusGone && strings.Contains(a.body, "This link is no longer valid"):
				default:
					t.Errorf("submission %d to process %d: HTTP %d, neither the success page nor the invalid-link page:\n%.300s",
						i, a.child, a.status, a.body)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("%d submissions succeeded (%v), want exactly 1", len(winners), winners)
			}
			winner := kids[answers[winners[0]].child]
			t.Logf("process %d won (successes by process: %v)", answers[winners[0]].child, perChild)

			recorded, err := os.ReadFile(changes)
			if err != nil {
				t.Fatalf("reading the Keystone calls: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(string(recorded)), "\n")
			if want := fmt.Sprintf("pid=%d user=%s", winner.cmd.Process.Pid, testUser); len(lines) != 1 || lines[0] != want {
				t.Errorf("Keystone password changes:\n%s\nwant exactly one: %s", recorded, want)
			}
			tk, err := st.GetToken(t.Context(), tokenHash(token))
			if err != nil {
				t.Fatal(err)
			}
			if tk.UsedAt == nil {
				t.Error("the token is not marked used")
			}
			events, err := st.Events(t.Context(), time.Time{}, testUser, 0)
			if err != nil {
				t.Fatal(err)
			}
			set := 0
			for _, ev := range events {
				if ev.Action == "user.password.set" {
					set++
				}
			}
			if set != 1 {
				t.Errorf("%d user.password.set audit events, want 1", set)
			}
		})
	}
}

// TestSetpassHelperProcess is a setpass process for TestTwoProcessesOneToken:
// it does nothing in a normal run. It serves on 127.0.0.1:0, prints the
// address, and shuts down gracefully when its stdin closes.
func TestSetpassHelperProcess(t *testing.T) {
	if os.Getenv(procEnvMode) != "serve" {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	st, err := store.Open(ctx, os.Getenv(procEnvStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := testSettings()
	s.SecretKey = []byte(os.Getenv(procEnvSecret))
	if s.MaxAttempts, err = strconv.Atoi(os.Getenv(procEnvMaxAttempts)); err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Deps{Store: st, Keystone: recordingKeystone{file: os.Getenv(procEnvChanges)},
		Pages: mustPages(t), Registry: prometheus.NewRegistry(), Now: time.Now, Random: rand.Reader, Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(procAddrPrefix + ln.Addr().String())
	if err := Serve(ctx, ln, h, ServeOptions{}); err != nil {
		t.Fatal(err)
	}
}

// recordingKeystone is a Keystone for one user, testUser, that accepts
// adminTok and appends every ChangePassword call to file (O_APPEND: the
// processes share it), so the parent counts calls across processes.
type recordingKeystone struct{ file string }

func (k recordingKeystone) CheckAdmin(ctx context.Context, token string) (string, error) {
	if token != adminTok {
		return "", ErrUnauthenticated
	}
	return "admin", nil
}

func (k recordingKeystone) User(ctx context.Context, id string) (User, error) {
	if id != testUser {
		return User{}, ErrUnknownUser
	}
	// Keystone takes milliseconds to answer: without this, on SQLite one
	// submission can finish before the next one has started, and the race
	// at ConsumeToken would not happen.
	time.Sleep(5 * time.Millisecond)
	return User{ID: testUser, Name: "ada", Email: "ada@example.org"}, nil
}

func (k recordingKeystone) ChangePassword(ctx context.Context, id, original, replacement string) error {
	f, err := os.OpenFile(k.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "pid=%d user=%s\n", os.Getpid(), id)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if original != tempPass {
		return ErrOriginalRefused
	}
	// Keystone hashes passwords: give the others time to pile up behind.
	time.Sleep(10 * time.Millisecond)
	return nil
}

func (k recordingKeystone) Ping(ctx context.Context) error { return nil }

// setpassChild is a running TestSetpassHelperProcess.
type setpassChild struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port/
	output *testenv.SyncBuffer
}

// startSetpassChild re-executes the test binary as a setpass process and
// waits for its address. It is stopped (stdin closed, then killed if need
// be) when the test ends, and must have exited cleanly.
func startSetpassChild(t *testing.T, env []string) *setpassChild {
	t.Helper()
	kill, cancel := context.WithCancel(context.Background())
	c := &setpassChild{output: &testenv.SyncBuffer{}}
	c.cmd = exec.CommandContext(kill, os.Args[0], "-test.run=^TestSetpassHelperProcess$", "-test.count=1",
		"-test.timeout="+procTimeout.String())
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = c.output
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, procAddrPrefix); ok {
				addr <- a
			}
			fmt.Fprintln(c.output, line)
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-copied // Wait closes stdout: read it all first
		exited <- c.cmd.Wait()
	}()
	t.Cleanup(func() {
		defer cancel()
		stdin.Close()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("setpass process %d: %v\n%s", c.cmd.Process.Pid, err, c.output)
			}
		case <-time.After(30 * time.Second):
			cancel()
			t.Errorf("setpass process %d did not stop when asked: killed\n%s", c.cmd.Process.Pid, c.output)
			<-exited
		}
	})
	select {
	case a := <-addr:
		c.base = "http://" + a + "/"
	case err := <-exited:
		t.Fatalf("setpass process exited before serving: %v\n%s", err, c.output)
	case <-time.After(procTimeout):
		t.Fatalf("setpass process did not start serving in %v\n%s", procTimeout, c.output)
	}
	return c
}

// procIssue issues a link for testUser through PUT /token on base.
func procIssue(t *testing.T, client *http.Client, base string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, base+"token/"+testUser,
		strings.NewReader(issueBody(tempPass, testPIN)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Token", adminTok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /token: HTTP %d %v", resp.StatusCode, errors.Join(err, errors.New(string(body))))
	}
	return string(body)
}

// procDo sends a request as a browser would (a form body, same-origin) and
// returns the status and body; status 0 for a transport error, in body.
func procDo(client *http.Client, method, target, form string) (int, string) {
	req, err := http.NewRequest(method, target, strings.NewReader(form))
	if err != nil {
		return 0, err.Error()
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(body)
}
