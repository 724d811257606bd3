package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Environment of a helper process.
const (
	envMode  = "KAIZEN_STORETEST_HELPER" // what to do; unset in a normal test run
	envURL   = "KAIZEN_STORETEST_URL"
	envDir   = "KAIZEN_STORETEST_DIR" // holds the ready-N, go and result-N files
	envChild = "KAIZEN_STORETEST_CHILD"
	envItems = "KAIZEN_STORETEST_ITEMS"
)

const (
	children     = 3
	items        = 100 // tokens, messages or keys raced for in one run
	childTimeout = 2 * time.Minute
)

// RunProcesses races OS processes on one database. newURL returns the URL
// of a fresh, empty database, which every child process opens. Each case
// asserts that every item was won by exactly one process.
func RunProcesses(t *testing.T, newURL func(t *testing.T) string) {
	indexes := func() []int64 {
		out := make([]int64, items)
		for i := range out {
			out[i] = int64(i)
		}
		return out
	}
	tests := []struct {
		name string
		// setup prepares the items and returns what the children must
		// share out between them; nil to check only that all succeed.
		setup func(t *testing.T, s store.Store) []int64
	}{
		{"consume", func(t *testing.T, s store.Store) []int64 {
			for i := range items {
				ok(t, "PutToken", s.PutToken(ctx(t), tokenFor(userN(i), base())))
			}
			return indexes()
		}},
		{"claim", func(t *testing.T, s store.Store) []int64 {
			var out []int64
			for i := range items {
				out = append(out, enqueue(t, s, message(fmt.Sprintf("m%03d", i), base())))
			}
			return out
		}},
		{"record", func(*testing.T, store.Store) []int64 { return indexes() }},
		// Every child counts items wrong PINs for one user: the counts
		// returned are 1..children*items, each once.
		{"pinfail", func(*testing.T, store.Store) []int64 {
			out := make([]int64, children*items)
			for i := range out {
				out[i] = int64(i + 1)
			}
			return out
		}},
		// Every child locks each user's PIN: one locks each.
		{"pinlock", func(*testing.T, store.Store) []int64 { return indexes() }},
		// Children race to open a fresh database and migrate it.
		{"migrate", func(*testing.T, store.Store) []int64 { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := newURL(t)
			var want []int64
			if tc.name != "migrate" {
				s := openT(t, url)
				want = tc.setup(t, s)
				ok(t, "Close", s.Close())
			}
			results := runChildren(t, tc.name, url)
			if want == nil {
				ok(t, "Ping after the race", openT(t, url).Ping(ctx(t)))
				return
			}
			var all []int64
			for _, r := range results {
				all = append(all, r...)
			}
			slices.Sort(all)
			if !slices.Equal(all, want) {
				t.Errorf("processes won %v (by process: %v), want each of %v exactly once", all, results, want)
			}
		})
	}
}

// openT opens url and closes the store when the test ends (closing twice
// is harmless).
func openT(t *testing.T, url string) store.Store {
	t.Helper()
	s, err := store.Open(ctx(t), url, nil)
	ok(t, "Open", err)
	t.Cleanup(func() { s.Close() })
	return s
}

// Opener is an open function for [Run] that opens, with [store.Open], a
// fresh database from newURL.
func Opener(newURL func(t *testing.T) string) func(t *testing.T) store.Store {
	return func(t *testing.T) store.Store { return openT(t, newURL(t)) }
}

// runChildren starts the children, releases them together once all are
// ready, and returns what each won.
func runChildren(t *testing.T, mode, url string) [][]int64 {
	dir := t.TempDir()
	c, cancel := context.WithTimeout(t.Context(), childTimeout)
	defer cancel()
	type child struct {
		cmd  *exec.Cmd
		out  bytes.Buffer
		done chan error
	}
	kids := make([]*child, children)
	for i := range kids {
		k := &child{done: make(chan error, 1)}
		k.cmd = exec.CommandContext(c, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1",
			"-test.timeout="+childTimeout.String())
		k.cmd.Env = append(os.Environ(), envMode+"="+mode, envURL+"="+url, envDir+"="+dir,
			envChild+"="+strconv.Itoa(i), envItems+"="+strconv.Itoa(items))
		k.cmd.Stdout, k.cmd.Stderr = &k.out, &k.out
		ok(t, "starting child", k.cmd.Start())
		go func() { k.done <- k.cmd.Wait() }()
		kids[i] = k
	}
	fail := func(i int, err error) {
		cancel()
		t.Fatalf("child %d: %v\n%s", i, err, kids[i].out.String())
	}
	for i, k := range kids {
		for !exists(filepath.Join(dir, fmt.Sprintf("ready-%d", i))) {
			select {
			case err := <-k.done:
				fail(i, fmt.Errorf("exited before it was ready: %v", err))
			case <-c.Done():
				fail(i, errors.New("not ready in time"))
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	// Release them at a set time rather than when each notices the file,
	// so that they start within a fraction of a millisecond.
	startAt := time.Now().Add(100 * time.Millisecond).Format(time.RFC3339Nano)
	ok(t, "releasing the children", os.WriteFile(filepath.Join(dir, "go.tmp"), []byte(startAt), 0o600))
	ok(t, "releasing the children", os.Rename(filepath.Join(dir, "go.tmp"), filepath.Join(dir, "go")))
	results := make([][]int64, children)
	for i, k := range kids {
		if err := <-k.done; err != nil {
			fail(i, err)
		}
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("result-%d", i)))
		ok(t, "reading a child's result", err)
		ok(t, "decoding a child's result", json.Unmarshal(data, &results[i]))
	}
	wins := make([]int, children)
	for i, r := range results {
		wins[i] = len(r)
	}
	t.Logf("%s: items won by each process: %v", mode, wins)
	return results
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// HelperProcess is the body of the backend test package's TestHelperProcess:
// it does nothing in a normal run, and a child's work when RunProcesses
// started the binary.
func HelperProcess(t *testing.T) {
	mode := os.Getenv(envMode)
	if mode == "" {
		return
	}
	dir, url := os.Getenv(envDir), os.Getenv(envURL)
	id := os.Getenv(envChild)
	n, err := strconv.Atoi(os.Getenv(envItems))
	ok(t, "parsing "+envItems, err)
	c := ctx(t)

	var s store.Store
	open := func() { s = openT(t, url) }
	if mode != "migrate" {
		open() // race on the work, not on opening
	}
	ok(t, "signalling ready", os.WriteFile(filepath.Join(dir, "ready-"+id), nil, 0o600))
	var startAt []byte
	for startAt, err = os.ReadFile(filepath.Join(dir, "go")); err != nil; startAt, err = os.ReadFile(filepath.Join(dir, "go")) {
		select {
		case <-c.Done():
			t.Fatal("never released")
		case <-time.After(time.Millisecond):
		}
	}
	at, err := time.Parse(time.RFC3339Nano, string(startAt))
	ok(t, "parsing the start time", err)
	time.Sleep(time.Until(at))

	// A little jitter between steps lets the processes interleave; without
	// it, SQLite's busy-handler backoff lets one drain the work alone.
	pause := func() { time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) }
	var won []int64
	switch mode {
	case "migrate":
		open()
		ok(t, "Ping", s.Ping(c))
	case "consume":
		for i := range n {
			pause()
			err := s.ConsumeToken(c, tokenFor(userN(i), base()).Hash, base())
			if err == nil {
				won = append(won, int64(i))
			} else if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("ConsumeToken %d: %v", i, err)
			}
		}
	case "claim":
		for round := 0; ; round++ {
			pause()
			ms := must(s.Claim(c, base(), time.Hour, fmt.Sprintf("child-%s-%d", id, round), 2))(t, "Claim")
			if len(ms) == 0 {
				break
			}
			won = append(won, ids(ms)...)
		}
	case "record":
		for i := range n {
			pause()
			if must(s.RecordOnce(c, fmt.Sprintf("key-%d", i), base()))(t, "RecordOnce") {
				won = append(won, int64(i))
			}
		}
	case "pinfail":
		for range n {
			pause()
			won = append(won, int64(must(s.RecordPINFailure(c, "alice", base(), 24*time.Hour))(t, "RecordPINFailure")))
		}
	case "pinlock":
		for i := range n {
			pause()
			if _, locked := must2(s.LockPIN(c, userN(i), base()))(t, "LockPIN"); locked {
				won = append(won, int64(i))
			}
		}
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
	data, err := json.Marshal(won)
	ok(t, "encoding the result", err)
	ok(t, "writing the result", os.WriteFile(filepath.Join(dir, "result-"+id), data, 0o600))
}
