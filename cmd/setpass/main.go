package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kaizen-onboard/kaizen/internal/cli"
)

// version is set at build time (make build: -ldflags -X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode("setpass", err, os.Stderr))
}
