package main

import (
	"context"
	"io"

	"github.com/kaizen-onboard/kaizen/internal/cli"
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	app := cli.App{
		Program: "reminders",
		Version: version,
		About:   "reminders runs Kaizen's scheduled jobs: digests, notices, link reminders, expiry warnings.",
	}
	return app.Run(ctx, args, getenv, stdout, stderr)
}
