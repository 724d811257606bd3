package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

func TestApp(t *testing.T) {
	var ran []string
	app := App{
		Program: "demo", Version: "1.2.3", About: "demo does things.", Default: "serve",
		Commands: []Command{
			{Name: "serve", Summary: "serve requests", Run: func(ctx context.Context, env Env, args []string) error {
				ran = append(ran, "serve "+strings.Join(args, " "))
				return nil
			}},
			{Name: "jobs list", Summary: "list jobs", Run: func(ctx context.Context, env Env, args []string) error {
				ran = append(ran, "jobs list")
				return errors.New("store unreachable")
			}},
		},
	}
	tests := []struct {
		name     string
		args     []string
		wantRan  string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "default command", args: nil, wantRan: "serve ", wantCode: ExitOK},
		{name: "command with arguments", args: []string{"serve", "--fast"}, wantRan: "serve --fast", wantCode: ExitOK},
		{name: "two-word command failing", args: []string{"jobs", "list"}, wantRan: "jobs list", wantCode: ExitFailed, wantErr: "demo: store unreachable"},
		{name: "first word only", args: []string{"jobs"}, wantCode: ExitUsage, wantErr: "usage: demo jobs list"},
		{name: "unknown", args: []string{"dance"}, wantCode: ExitUsage, wantErr: `unknown command "dance"`},
		{name: "version flag", args: []string{"--version"}, wantCode: ExitOK, wantOut: "demo 1.2.3\n"},
		{name: "version command", args: []string{"version"}, wantCode: ExitOK, wantOut: "demo 1.2.3\n"},
		{name: "help lists commands and the default", args: []string{"-help"}, wantCode: ExitOK, wantOut: "(runs \"serve\")"},
		{name: "help command", args: []string{"help"}, wantCode: ExitOK, wantOut: "jobs list      list jobs"},
		{name: "bad flag", args: []string{"--verbose"}, wantCode: ExitUsage, wantErr: "flag provided but not defined: -verbose"},
		{name: "config check takes no arguments", args: []string{"config", "check", "now"}, wantCode: ExitUsage, wantErr: "usage: demo config check"},
		{name: "config check on an invalid file", args: []string{"--config", "/nonexistent.toml", "config", "check"}, wantCode: ExitUsage, wantErr: "cannot read settings file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran = nil
			var out, errb bytes.Buffer
			err := app.Run(context.Background(), tt.args, func(string) string { return "" }, &out, &errb)
			code := ExitCode("demo", err, &errb)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (err %v)", code, tt.wantCode, err)
			}
			if got := strings.Join(ran, ";"); got != tt.wantRan {
				t.Errorf("ran %q, want %q", got, tt.wantRan)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantErr)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"help", flag.ErrHelp, ExitOK},
		{"usage", Usagef("bad"), ExitUsage},
		{"configuration", fmt.Errorf("loading: %w", &config.Error{Problems: []config.Problem{{Key: "a", Message: "b"}}}), ExitUsage},
		{"work failed", errors.New("boom"), ExitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if got := ExitCode("p", tt.err, &b); got != tt.want {
				t.Errorf("ExitCode = %d, want %d", got, tt.want)
			}
		})
	}
}
