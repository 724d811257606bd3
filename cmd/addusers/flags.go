package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/config"
)

// The subcommands parse their command lines alike: --help prints the
// command's usage on stdout and exits 0; a bad flag or a stray word is a
// usage error (exit 2).

// newFlagSet returns the flag set of one subcommand. The flag package's own
// messages are discarded: parseFlags turns its errors into usage errors.
func newFlagSet(name, usage string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { fmt.Fprint(stdout, usage) }
	return fs
}

// parseFlags parses args into fs. flag.ErrHelp comes back as it is (the
// flag package has printed the usage); any other error, or an argument
// left over, becomes a usage error starting with prefix (e.g. "quotas: ").
func parseFlags(fs *flag.FlagSet, args []string, prefix string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return cli.Usagef("%s%v", prefix, err)
	}
	if fs.NArg() > 0 {
		return cli.Usagef("%sunexpected argument %q", prefix, fs.Arg(0))
	}
	return nil
}

// command is a subcommand that parses its flags first (--help and usage
// errors need no settings), then runs on the composition root.
func command[F any](parse func([]string, io.Writer) (F, error), run func(context.Context, *app.App, F, cli.Env) error) func(context.Context, cli.Env, []string) error {
	return func(ctx context.Context, env cli.Env, args []string) error {
		f, err := parse(args, env.Stdout)
		if err != nil {
			return err
		}
		a, err := loadApp(env)
		if err != nil {
			return err
		}
		defer a.Close()
		return run(ctx, a, f, env)
	}
}

// loadApp loads the settings and returns the composition root of one
// subcommand: every dependency comes from it. Close it when the command
// ends.
func loadApp(env cli.Env) (*app.App, error) {
	cfg, err := env.Global.LoadConfig(env.Getenv)
	if err != nil {
		return nil, err
	}
	return app.New(cfg, newLogger(cfg, env), app.Options{}), nil
}

// newLogger is the logger every subcommand logs with.
func newLogger(cfg *config.Config, env cli.Env) *slog.Logger {
	return cli.NewLogger(cfg.Log, env.Stderr).With("program", "addusers")
}
