# cachee's build. `make help` lists the targets; `make run` and `make test` work on a
# fresh Debian machine (as root, for apt-get).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules
.DELETE_ON_ERROR:
.SUFFIXES:

# Tool versions, pinned here and nowhere else.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPC_HEALTH_PROBE_VERSION := v0.4.62
# redis-py for the RESP tests; keep it equal to redisPyVersion in server/resp/clients_test.go.
REDIS_PY_VERSION := 8.1.0

TMP := $(CURDIR)/.tmp
BIN := $(TMP)/bin
export PATH := $(BIN):$(PATH)
export GOBIN := $(BIN)

CACHEE := $(CURDIR)/bin/cachee
# `make run` uses the production socket path where it can create it (root), and a
# socket under .tmp/ otherwise, so that it works on a developer machine either way.
RUN_SOCKET ?= $(if $(filter 0,$(shell id -u)),/var/run/cachee/cachee.sock,$(TMP)/run/cachee.sock)
RUN_ARGS ?=
FUZZ_TIME ?= 20s
# Minimizing an input the fuzzer found is bounded in runs rather than time: a target
# whose runs are slow (a gRPC call each) otherwise spends a minute on every new input.
FUZZ_MINIMIZE ?= 2000x
BENCH_ARGS ?=
SDK_BENCH_ARGS ?=

.PHONY: help
help: ## Describe the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: all
all: build test ## Build and test

.PHONY: build
build: ## Build bin/cachee
	go build -o $(CACHEE) ./cmd/cachee

.PHONY: run
run: build ## Build and start cachee with developer-machine defaults
	@echo "cachee: socket $(RUN_SOCKET); try: CACHEE_SOCKET=$(RUN_SOCKET) $(CACHEE) stats" >&2
	$(CACHEE) start --socket=$(RUN_SOCKET) $(RUN_ARGS)

.PHONY: test
test: deps tools checkgenerate lint ## Set up a fresh machine, then check generated code, vet and run all tests under -race
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	CACHEE_HEALTH_PROBE=$(BIN)/grpc-health-probe CACHEE_REQUIRE_TOOLS=1 \
		CACHEE_REDIS_PY=$(TMP)/redispy/bin/python go test -race -timeout 15m ./...

.PHONY: deps
deps: $(TMP)/redispy/bin/python ## Install what the tests use: redis-server and redis-tools (apt), redis-py (a venv)
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools)

# redis-py, the Python client the RESP tests run against the server.
$(TMP)/redispy/bin/python:
	python3 -m venv $(TMP)/redispy
	$(TMP)/redispy/bin/pip install -q redis==$(REDIS_PY_VERSION)

.PHONY: tools
tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/grpc-health-probe ## Install pinned tools into .tmp/bin

.PHONY: generate
generate: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## Regenerate gen/go from proto/
	buf generate

.PHONY: checkgenerate
checkgenerate: generate ## Fail if generated code differs from what is committed
	@if [ -n "$$(git status --porcelain -- gen proto)" ]; then \
		echo "generated code is out of date; run 'make generate' and commit:"; \
		git status --porcelain -- gen proto; git --no-pager diff --stat -- gen; exit 1; fi

.PHONY: lint
lint: $(BIN)/buf ## buf lint, and buf breaking against main when main has the API
	buf lint
	@gitdir=$$(git rev-parse --path-format=absolute --git-common-dir); \
	if git rev-parse -q --verify refs/heads/main >/dev/null && \
		[ -n "$$(git ls-tree -r --name-only main -- proto)" ]; then \
		echo "buf breaking --against $$gitdir#branch=main"; \
		buf breaking --against "$$gitdir#branch=main"; \
	else echo "buf breaking: skipped, no local branch main with proto/ to compare against"; fi

.PHONY: bench
bench: build ## Compare gRPC Get over the socket with a bare grpc-go health Check, and the SDK's paths
	go run ./bench/grpcget -cachee $(CACHEE) $(BENCH_ARGS)
	go run ./bench/sdk -cachee $(CACHEE) $(SDK_BENCH_ARGS)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZ_TIME each; crashers land in the package's testdata/fuzz, where go test replays them
	@status=0; summary=""; \
	for file in $$(grep -rl --include='*_test.go' --exclude-dir=.tmp --exclude-dir=.git '^func Fuzz' .); do \
		pkg=$$(dirname $$file); \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== $$target in $$pkg for $(FUZZ_TIME)"; \
			log=$$(mktemp); \
			if go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZ_TIME) -fuzzminimizetime $(FUZZ_MINIMIZE) $$pkg 2>&1 | tee $$log; \
			then result=ok; else result=FAILED; status=1; fi; \
			execs=$$(grep -o 'execs: [0-9]*' $$log | tail -1 | cut -d' ' -f2 || true); \
			summary="$$summary$$(printf '%-24s %-28s %12s execs  %s' $$target $$pkg "$${execs:-0}" $$result)\n"; \
			rm -f $$log; \
		done; \
	done; \
	printf "\nfuzz summary (FUZZ_TIME=$(FUZZ_TIME) per target):\n$$summary"; \
	if [ $$status != 0 ]; then echo "crashers were written under testdata/fuzz: fix the bug, keep the file as a regression case"; fi; \
	exit $$status

.PHONY: clean
clean: ## Remove build outputs and installed tools
	rm -rf bin $(TMP)

$(BIN)/buf: Makefile
	go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@

$(BIN)/protoc-gen-go: Makefile
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@

$(BIN)/protoc-gen-go-grpc: Makefile
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@

$(BIN)/grpc-health-probe: Makefile
	go install github.com/grpc-ecosystem/grpc-health-probe@$(GRPC_HEALTH_PROBE_VERSION)
	@touch $@
