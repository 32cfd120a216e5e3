# The two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
BIN := $(CURDIR)/bin
TEMPORAL_CLI_VERSION := v1.5.1
WORKFLOWCHECK_VERSION := v0.6.0
TEMPORAL := $(BIN)/temporal
MAILPIT_VERSION := v1.33.1
MAILPIT := $(BIN)/mailpit
FUZZTIME ?= 10s
TEMPORAL_SERVER_VERSION := v1.29.1
TEMPORAL_UI_VERSION := v2.54.1
PG_SERVER := $(BIN)/pg/server
PG_SQL := $(BIN)/pg/sql
UI_SERVER := $(BIN)/ui/server
PG_STACK := $(CURDIR)/scripts/pg-stack.sh
export TEMPORAL_CLI := $(TEMPORAL)
export MAILPIT

.PHONY: chromium run test lint vet workflowcheck fuzz bench bench-load bench-go bench-pg postgres build run-pg test-pg pg-bins

## run: everything on this machine — Temporal dev server + UI, database, demo seed, worker and API
run: $(TEMPORAL) $(MAILPIT) postgres build
	@exec $(BIN)/fulfillment dev

## test: every test, against a real Temporal dev server and real PostgreSQL
test: $(TEMPORAL) $(MAILPIT) postgres chromium lint
	go test -race -count=1 -parallel 4 -timeout 60m ./...
	$(MAKE) fuzz

## run-pg: like run, but on the production engine — the real Temporal server on PostgreSQL + UI
run-pg: pg-bins $(MAILPIT) postgres build
	@set -euo pipefail; \
	trap '$(PG_STACK) stop' EXIT; trap 'exit 130' INT TERM; \
	$(PG_STACK) start; \
	TEMPORAL_ADDRESS=$$($(PG_STACK) address) TEMPORAL_UI_PORT=$${TEMPORAL_PG_UI_PORT:-8233} $(BIN)/fulfillment dev

## test-pg: the e2e suite against a fresh Temporal-on-PostgreSQL stack (own databases and ports,
## dropped after). Not part of `make test`. E2E_ARGS adds go test flags, e.g. E2E_ARGS='-run Purchase'.
test-pg: pg-bins $(MAILPIT) postgres
	@set -euo pipefail; \
	id=$$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n'); \
	export TEMPORAL_PG_DB=temporal_test_$$id TEMPORAL_PG_VISIBILITY_DB=temporal_test_$${id}_visibility \
		TEMPORAL_PG_DATA_DIR=$(CURDIR)/.tmp/temporal-pg-$$id TEMPORAL_PG_PORT=auto TEMPORAL_PG_UI_PORT=auto; \
	trap 'rc=$$?; $(PG_STACK) stop --drop; \
		if [ $$rc = 0 ]; then rm -rf "$$TEMPORAL_PG_DATA_DIR"; else echo "Temporal logs kept in $$TEMPORAL_PG_DATA_DIR"; fi; exit $$rc' EXIT; \
	$(PG_STACK) start; \
	TEST_TEMPORAL_ADDRESS=$$($(PG_STACK) address) go test -count=1 -timeout 30m $(E2E_ARGS) ./e2e/

build:
	go build -o $(BIN)/fulfillment ./cmd/fulfillment

# The Temporal CLI (dev server and UI) builds from the Go module proxy; installed once.
$(TEMPORAL):
	@echo "Installing the Temporal CLI $(TEMPORAL_CLI_VERSION) into ./bin (first time only, a few minutes)..."
	GOBIN=$(BIN) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# Mailpit, the local SMTP server with a web inbox (make run) and the e2e
# tests' mail server; builds from the Go module proxy, installed once.
$(MAILPIT):
	@echo "Installing Mailpit $(MAILPIT_VERSION) into ./bin (first time only)..."
	GOBIN=$(BIN) go install github.com/axllent/mailpit@$(MAILPIT_VERSION)

# The production engine for run-pg/test-pg: Temporal server and its schema tool (`sql`), and the
# Temporal UI server; built from the Go module proxy, installed once.
pg-bins: $(TEMPORAL) $(PG_SERVER) $(PG_SQL) $(UI_SERVER)

$(PG_SERVER):
	@echo "Installing the Temporal server $(TEMPORAL_SERVER_VERSION) into ./bin/pg (first time only, several minutes)..."
	GOBIN=$(BIN)/pg go install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION)

$(PG_SQL):
	GOBIN=$(BIN)/pg go install go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)

$(UI_SERVER):
	@echo "Installing the Temporal UI server $(TEMPORAL_UI_VERSION) into ./bin/ui (first time only)..."
	GOBIN=$(BIN)/ui go install github.com/temporalio/ui-server/v2/cmd/server@$(TEMPORAL_UI_VERSION)

# The portal's browser tests (e2e/portal_test.go) drive Debian's Chromium;
# installed once on a fresh machine (CI runs as root; otherwise through sudo).
chromium:
	@test -x /usr/bin/chromium || { \
		echo "Installing Chromium for the portal's browser tests..."; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium; }

# PostgreSQL must answer at 127.0.0.1:5432; start the local cluster if it does not.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
		echo "Starting PostgreSQL..."; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
		for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
		pg_isready -h 127.0.0.1 -p 5432; }

lint: vet workflowcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

vet:
	go vet ./...
	go vet -tags faults ./activities ./testenv

# Workflow code must stay deterministic.
workflowcheck:
	go run go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION) ./workflows/...

## fuzz: each fuzz target for FUZZTIME (seed corpora under testdata/fuzz)
fuzz:
	@for target in $$(grep -rho 'func Fuzz[A-Za-z0-9_]*' --include='*_test.go' api | sed 's/func //'); do \
		echo "fuzz $$target for $(FUZZTIME)"; \
		go test ./api -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## bench: the load benchmark (ceiling vs. the service, list over 100,000 rows), then the Go
## benchmarks. Not part of `make test`. BENCH_ARGS passes flags to cmd/bench (go run ./cmd/bench -h).
bench: bench-load bench-go

## bench-load: the load benchmark alone, on its own dev server and database (under 5 minutes)
bench-load: $(TEMPORAL) postgres build
	set -o pipefail; go run ./cmd/bench -binary $(BIN)/fulfillment $(BENCH_ARGS) | tee bench-load.out

## bench-go: Go benchmarks, 6 runs each, ready for benchstat (benchstat old.out bench.out)
bench-go: $(TEMPORAL) postgres
	set -o pipefail; go test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.out

## bench-pg: the load benchmark against the Temporal server on PostgreSQL (own databases and
## ports, dropped after), like test-pg
bench-pg: pg-bins postgres build
	@set -euo pipefail; \
	id=$$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n'); \
	export TEMPORAL_PG_DB=temporal_bench_$$id TEMPORAL_PG_VISIBILITY_DB=temporal_bench_$${id}_visibility \
		TEMPORAL_PG_DATA_DIR=$(CURDIR)/.tmp/temporal-pg-$$id TEMPORAL_PG_PORT=auto TEMPORAL_PG_UI_PORT=off; \
	trap 'rc=$$?; $(PG_STACK) stop --drop; \
		if [ $$rc = 0 ]; then rm -rf "$$TEMPORAL_PG_DATA_DIR"; else echo "Temporal logs kept in $$TEMPORAL_PG_DATA_DIR"; fi; exit $$rc' EXIT; \
	$(PG_STACK) start; \
	go run ./cmd/bench -binary $(BIN)/fulfillment -temporal-address $$($(PG_STACK) address) -server-pid $$(cat $$TEMPORAL_PG_DATA_DIR/server.pid) \
		-engine "Temporal server $(TEMPORAL_SERVER_VERSION) on PostgreSQL" $(BENCH_ARGS) | tee bench-pg.out
