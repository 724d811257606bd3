package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// The helpdesk's reset-password lives in cmd/addusers (package main), so
// the test runs the real program: built once per test binary, in the
// background from the moment a test knows the servers are there.

var buildStarted atomic.Bool

// startBuilding builds addusers in the background.
func startBuilding() {
	if !buildStarted.Swap(true) {
		go addusersBinary() // an error surfaces where the program is used
	}
}

var addusersBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kaizen-e2e-bin-")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := testenv.BuildProgram(ctx, dir, "addusers", raceEnabled)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return bin, nil
})

// TestMain removes the built program at the end.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildStarted.Load() {
		if p, err := addusersBinary(); err == nil {
			os.RemoveAll(filepath.Dir(p))
		}
	}
	os.Exit(code)
}

// addusers runs the real program with the world's settings and
// environment and returns its exit status and output.
func (w *world) addusers(args ...string) (code int, stdout, stderr string) {
	w.t.Helper()
	startBuilding()
	bin, err := addusersBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(w.t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--config", w.settings}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KAIZEN_") {
			env = append(env, kv)
		}
	}
	for k, v := range w.env {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		w.t.Fatalf("running addusers: %v", err)
	}
	return 0, out.String(), errOut.String()
}
