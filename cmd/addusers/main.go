package main

import (
	"os"

	"github.com/kaizen-onboard/kaizen/internal/cli"
)

// version is set at build time (make build: -ldflags -X main.version=...).
var version = "dev"

func main() { os.Exit(cli.Main("addusers", run)) }
