package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Env is what a command receives from its program: the parsed global flags
// and the process's outside world, passed explicitly.
type Env struct {
	Global *Global
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
}

// Command is one subcommand.
type Command struct {
	Name    string // may hold a space: "config check" is matched as two words
	Summary string
	Run     func(ctx context.Context, env Env, args []string) error
}

// App is a program: its global flags, commands and help text.
type App struct {
	Program string
	Version string
	About   string // first line of --help
	// Default runs when no command is given; "" means a usage error.
	Default  string
	Commands []Command
}

// Run parses args and runs the chosen command.
func (a App) Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	commands := append([]Command{
		{Name: "config check", Summary: "validate the settings and print them with secrets redacted\n(exit 2, listing every problem, when they are not valid)",
			Run: func(ctx context.Context, env Env, args []string) error {
				return env.Global.configCheck(args, env.Getenv, env.Stdout, env.Stderr)
			}},
		{Name: "version", Summary: "print the version", Run: func(ctx context.Context, env Env, args []string) error {
			return a.printVersion(env.Stdout)
		}},
	}, a.Commands...)
	g := NewGlobal(a.Program, a.usage(commands), stdout)
	rest, err := g.Parse(args)
	if err != nil {
		return err
	}
	if g.Version {
		return a.printVersion(stdout)
	}
	env := Env{Global: g, Getenv: getenv, Stdout: stdout, Stderr: stderr}
	if len(rest) == 0 {
		if a.Default == "" {
			g.Flags.Usage()
			return Usagef("no command given")
		}
		rest = strings.Fields(a.Default)
	}
	if rest[0] == "help" {
		g.Flags.Usage()
		return nil
	}
	for _, c := range commands {
		words := strings.Fields(c.Name)
		if len(rest) >= len(words) && strings.Join(rest[:len(words)], " ") == c.Name {
			return c.Run(ctx, env, rest[len(words):])
		}
	}
	for _, c := range commands {
		if first, _, ok := strings.Cut(c.Name, " "); ok && first == rest[0] {
			return Usagef("usage: %s %s", a.Program, c.Name)
		}
	}
	return Usagef("unknown command %q", rest[0])
}

func (a App) printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "%s %s\n", a.Program, a.Version)
	return err
}

func (a App) usage(commands []Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nUsage:\n  %s [--config PATH] <command> [arguments]\n", a.About, a.Program)
	if a.Default != "" {
		fmt.Fprintf(&b, "  %s [--config PATH]          (runs %q)\n", a.Program, a.Default)
	}
	b.WriteString("\nCommands:\n")
	for _, c := range commands {
		lines := strings.Split(c.Summary, "\n")
		fmt.Fprintf(&b, "  %-14s %s\n", c.Name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "  %-14s %s\n", "", l)
		}
	}
	b.WriteString(`
Global flags:
  --config PATH  settings file (default $KAIZEN_CONFIG, else ./settings.toml,
                 else the built-in defaults)
  --version      print the version
  --help         show this help

Exit status: 0 success, 1 some work failed, 2 usage or configuration error.
Every setting is described in settings.example.toml.
`)
	return b.String()
}
