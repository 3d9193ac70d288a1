# chatrabridge: `make dev` runs the whole system, `make test` runs every test.
GO ?= go

.PHONY: dev test build vet compose-check

dev: ## the whole system in one process (Temporal, Web UI on :8233, API on :8080)
	$(GO) run ./cmd/chatrabridge dev

test: ## every test, against the local PostgreSQL and an embedded Temporal server
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

build: ## the binary, into bin/
	$(GO) build -o bin/chatrabridge ./cmd/chatrabridge

compose-check: ## docker-compose.yml is valid (Debian's docker-compose package)
	ADMIN_TOKEN=x SECRETS_KEY=x docker-compose config -q
