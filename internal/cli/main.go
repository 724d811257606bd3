package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// RunFunc is a program's run: its whole behaviour, given the process's
// arguments, environment and output streams.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Main runs run on this process (SIGINT and SIGTERM cancel its context)
// and returns the exit status for os.Exit.
func Main(program string, run RunFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ExitCode(program, run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr)
}
