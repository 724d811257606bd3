package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
)

// BuildProgram builds the module's command cmd/name (addusers, setpass,
// reminders) into dir and returns the binary's path. With race it is built
// with -race, so the program's data races fail a -race test run as the
// test's own would. It needs the go command on PATH, as go test has it.
func BuildProgram(ctx context.Context, dir, name string, race bool) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	out := filepath.Join(dir, name)
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	// The import path, not ./cmd/name: the caller's directory may be any
	// package of the module.
	cmd := exec.CommandContext(ctx, goTool, append(args, "github.com/kaizen-onboard/kaizen/cmd/"+name)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, stderr.String())
	}
	return out, nil
}
