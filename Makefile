# The two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
BIN := $(CURDIR)/bin
TEMPORAL_CLI_VERSION := v1.5.1
WORKFLOWCHECK_VERSION := v0.6.0
TEMPORAL := $(BIN)/temporal
FUZZTIME ?= 10s
export TEMPORAL_CLI := $(TEMPORAL)

.PHONY: run test lint vet workflowcheck fuzz bench postgres build test-short

## run: everything on this machine — Temporal dev server + UI, database, demo seed, worker and API
run: $(TEMPORAL) postgres build
	@exec $(BIN)/fulfillment dev

## test: every test, against a real Temporal dev server and real PostgreSQL
test: $(TEMPORAL) postgres lint
	go test -race -count=1 -timeout 60m ./...
	$(MAKE) fuzz

build:
	go build -o $(BIN)/fulfillment ./cmd/fulfillment

# The Temporal CLI (dev server and UI) builds from the Go module proxy; installed once.
$(TEMPORAL):
	@echo "Installing the Temporal CLI $(TEMPORAL_CLI_VERSION) into ./bin (first time only, a few minutes)..."
	GOBIN=$(BIN) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

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

# Workflow code must stay deterministic.
workflowcheck:
	go run go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION) ./workflows/...

## fuzz: each fuzz target for FUZZTIME (seed corpora under testdata/fuzz)
fuzz:
	@for target in $$(grep -rho 'func Fuzz[A-Za-z0-9_]*' --include='*_test.go' api | sed 's/func //'); do \
		echo "fuzz $$target for $(FUZZTIME)"; \
		go test ./api -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## bench: Go benchmarks, 6 runs each, ready for benchstat
bench: $(TEMPORAL) postgres
	go test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.out
