# Kaizen: `make demo` shows the main job; `make test` runs every test against
# real local servers it installs and starts itself.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# What the tests need on this machine: Keystone with the Nova, Cinder and
# Neutron quota APIs, a throwaway PostgreSQL cluster, all on loopback with
# state under .dev/, and Debian's Chromium.
DEV_SCRIPTS := scripts/dev-keystone scripts/dev-postgres scripts/dev-browser
# Their exported variables (OS_*, KAIZEN_TEST_QUOTA_SERVICES,
# KAIZEN_TEST_POSTGRES_URL, KAIZEN_TEST_CHROMIUM).
DEV_ENV     = $(foreach s,$(DEV_SCRIPTS),eval "$$($(s) env)" &&) true
TEST_FLAGS  ?= -race -count=1 -timeout 20m

.PHONY: build test unit bench lint fmt demo dev-up dev-down clean

build: ## compile the three programs into bin/
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

test: dev-up ## unit and integration tests; installs and starts what they need
	$(DEV_ENV) && $(GO) test $(TEST_FLAGS) ./...

unit: ## tests that need no local servers (integration tests skip, except under CI=true)
	$(GO) test -count=1 ./...

bench: dev-up ## benchmarks against the local servers
	$(DEV_ENV) && $(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

lint: ## go vet, gofmt and staticcheck
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w .

demo: build ## the main job end to end against the local OpenStack services (scripts/demo)
	scripts/dev-keystone up
	@scripts/demo

dev-up: ## start the local OpenStack services and PostgreSQL, install Chromium (all installed on first use)
	$(foreach s,$(DEV_SCRIPTS),$(s) up &&) true

dev-down: ## stop the local servers
	$(foreach s,$(DEV_SCRIPTS),$(s) down;) true

clean: dev-down ## stop local servers and remove build and state output
	rm -rf bin .dev var
