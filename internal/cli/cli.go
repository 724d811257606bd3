// Package cli holds the conventions the three Kaizen programs share: global
// flags, where settings are found, the logger, and how an error becomes an
// exit status (0 ok, 1 work failed, 2 usage or configuration error).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Exit statuses.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// ErrUsage marks a command line that cannot be run as written.
var ErrUsage = errors.New("usage error")

// Usagef returns an ErrUsage error with a message for the user.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// ExitCode maps run's error to an exit status and writes the message, if any,
// to stderr.
func ExitCode(program string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", program, strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "), program)
		return ExitUsage
	case errors.Is(err, config.ErrInvalid):
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return ExitFailed
	}
}

// Global holds the flags every program accepts before its command.
type Global struct {
	Program    string
	ConfigPath string
	Version    bool
	Flags      *flag.FlagSet
}

// NewGlobal prepares the global flags; usage is the text printed for --help.
func NewGlobal(program, usage string, stdout io.Writer) *Global {
	g := &Global{Program: program}
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.ConfigPath, "config", "", "settings file (default $KAIZEN_CONFIG, else ./settings.toml)")
	fs.BoolVar(&g.Version, "version", false, "print the version and exit")
	fs.Usage = func() { fmt.Fprint(stdout, usage) }
	g.Flags = fs
	return g
}

// Parse parses the global flags and returns the remaining arguments. On
// --help the usage is printed and flag.ErrHelp returned.
func (g *Global) Parse(args []string) ([]string, error) {
	if err := g.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err // the flag package has printed the usage
		}
		return nil, Usagef("%v", err)
	}
	return g.Flags.Args(), nil
}

// LoadConfig finds and loads the settings: --config, else $KAIZEN_CONFIG,
// else ./settings.toml. When none of these names a file and ./settings.toml
// does not exist, the built-in defaults are used.
func (g *Global) LoadConfig(getenv func(string) string) (*config.Config, error) {
	path := g.ConfigPath
	if path == "" {
		path = getenv("KAIZEN_CONFIG")
	}
	if path == "" {
		if _, err := os.Stat("settings.toml"); err == nil {
			path = "settings.toml"
		}
	}
	return config.Load(path, config.Options{Getenv: getenv})
}

// NewLogger builds the structured logger the settings ask for.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated at load
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// configCheck runs "config check" (args are the words after it): validate
// the settings and print them with secrets redacted. Any problem is printed
// and exits 2.
func (g *Global) configCheck(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return Usagef("usage: %s config check", g.Program)
	}
	cfg, err := g.LoadConfig(getenv)
	if err != nil {
		return err
	}
	if err := cfg.WriteRedacted(stdout); err != nil {
		return fmt.Errorf("printing configuration: %w", err)
	}
	if !cfg.Secrets.IsSet() {
		// Valid for commands that send no mail (plan, validate), so not an
		// error; but the programs that mail refuse to start without keys.
		fmt.Fprintf(stderr, "%s: WARNING: no secret keys are set: addusers import, reset-password and domain-manager, "+
			"setpass and reminders cannot queue or deliver mail or check PINs without them; %s\n", g.Program, config.MissingSecretsHelp)
	}
	fmt.Fprintf(stderr, "%s: configuration OK\n", g.Program)
	return nil
}
