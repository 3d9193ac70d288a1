# chatrabridge: `make dev` runs the whole system, `make test` runs every test.
GO ?= go

.PHONY: dev test build build-production vet compose-check demo demo-check ui-check bench chaos topology histories

dev: ## the whole system in one process (Temporal, Web UI on :8233, API on :8080)
	$(GO) run ./cmd/chatrabridge dev

test: ## every test, against the local PostgreSQL and an embedded Temporal server
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) vet -tags nodev ./cmd/chatrabridge
	$(GO) test -count=1 -timeout 20m ./...

# The e2e tests that record a workflow history each (one behaviour of a conversation).
HISTORY_TESTS = TestWholeChat|TestFragmentBeforeChatStart|TestTwoDevices|TestLateReplyAfterClose|TestTranscriptReconciliation|TestIdleClose|TestCancel|TestContinueAsNew|TestHeldReply|TestReplyFromDisallowedEmployee|TestSetupFailureHealed|TestActiveTaskOption

histories: ## record a release's workflow histories for the replay test: make histories RELEASE=v0.1.0 (append-only)
	@test -n "$(RELEASE)" || { echo 'make histories: say which release records them, e.g. make histories RELEASE=v0.1.0 (its line in workflows/testdata/releases.txt, checked out at its commit)' >&2; exit 2; }
	$(GO) test ./workflows/e2e -count=1 -run '^($(HISTORY_TESTS))$$' -record -release $(RELEASE)

build: ## the binary, into bin/
	$(GO) build -o bin/chatrabridge ./cmd/chatrabridge

build-production: ## the production binary (the Dockerfile's): no dev stack (dev, demo, sandbox), into bin/
	CGO_ENABLED=0 $(GO) build -tags nodev -trimpath -ldflags="-s -w" -o bin/chatrabridge-production ./cmd/chatrabridge

compose-check: ## docker-compose.yml is valid (Debian's docker-compose package)
	ADMIN_TOKEN=x SECRETS_KEY=x docker-compose config -q

bench: ## the benchmarks (embedded Temporal, PostgreSQL, sandbox): a table, and JSON in bench/results/
	$(GO) run ./bench -out bench/results/latest.json $(BENCH_FLAGS)

# The sandbox's Planfix modes `make chaos` runs every fault test in (chaos/chaos_test.go).
CHAOS_MODES ?= normal no-source-ids keep-user refuse-contact

chaos: ## the fault tests at a larger size, in each Planfix mode (a small size of each, and each mode in one test, runs in `make test`)
	@for m in $(CHAOS_MODES); do \
		echo "== chaos in Planfix mode $$m"; \
		$(GO) test -count=1 -timeout 40m -v ./chaos -skip TestPlanfixModes -chaos.mode $$m -chaos.chats 20 -chaos.messages 10 -chaos.wait 20m || exit 1; \
	done

topology: ## the production topology as processes (temporal CLI dev server, 2 api, 2 worker, sandbox), with its printout
	$(GO) test -count=1 -v -run TestProductionTopology ./topology

demo: ## a scripted chat against the running `make dev`; prints the resulting task
	$(GO) run ./cmd/chatrabridge demo

demo-check: ## dev in the background on a scratch database, the demo against it, dev stopped (CI)
	GO=$(GO) scripts/demo-check.sh

ui-check: ## after a demo, the Web UI lists the conversation by the customer's email and shows its decoded messages (headless Chromium)
	GO=$(GO) scripts/ui-check.sh
