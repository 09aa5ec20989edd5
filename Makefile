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
BENCH_ARGS ?=

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
	CACHEE_HEALTH_PROBE=$(BIN)/grpc-health-probe go test -race -timeout 15m ./...
	$(MAKE) --no-print-directory test-deploy

.PHONY: deps
deps: ## Install system packages the tests use (redis-server, redis-tools)
	@command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server redis-tools)

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
	else echo "buf breaking: skipped, branch main has no proto/ yet"; fi

.PHONY: bench
bench: build ## Compare gRPC Get over the socket with a bare grpc-go health Check
	go run ./bench/grpcget -cachee $(CACHEE) $(BENCH_ARGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZ_TIME
	go test -run '^$$' -fuzz '^FuzzSniff$$' -fuzztime $(FUZZ_TIME) ./server
	go test -run '^$$' -fuzz '^FuzzParseSize$$' -fuzztime $(FUZZ_TIME) ./cmd/cachee/internal/cli

# deploy/ is its own Go module, so that the Kubernetes API types its tests decode into,
# and the kustomize and helm libraries that render the manifests (pinned in
# deploy/go.mod), stay out of the binary's go.mod. POD_* tune `make pod`; see
# deploy/cmd/pod.
IMAGE_OUT := $(TMP)/image
POD_DURATION ?= 10s
POD_L2 ?= auto
POD_ARGS ?=

.PHONY: test-deploy
test-deploy: deps $(BIN)/grpc-health-probe image-binary ## Render every manifest and chart, decode strictly, check invariants; run the pod briefly
	@test -z "$$(gofmt -l deploy examples)" || { echo "gofmt needed:"; gofmt -l deploy examples; exit 1; }
	cd deploy && go vet ./...
	cd deploy && DEPLOY_TOOLS_REQUIRED=1 CACHEE_HEALTH_PROBE=$(BIN)/grpc-health-probe \
		IMAGE_OUT=$(IMAGE_OUT) go test -race -timeout 10m ./...

.PHONY: image-binary
image-binary: ## Run deploy/docker/Dockerfile's build steps without Docker, into .tmp/image; check the binaries are static
	rm -rf $(IMAGE_OUT) && mkdir -p $(IMAGE_OUT)
	export CGO_ENABLED=0 GOFLAGS=-buildvcs=false; \
	go build -trimpath -ldflags="-s -w" -o $(IMAGE_OUT)/cachee ./cmd/cachee && \
	GOBIN=$(IMAGE_OUT) go install -trimpath -ldflags="-s -w" github.com/grpc-ecosystem/grpc-health-probe@$(GRPC_HEALTH_PROBE_VERSION) && \
	go build -trimpath -ldflags="-s -w" -o $(IMAGE_OUT)/example-app ./examples/app
	@for f in $(IMAGE_OUT)/*; do \
		file -b "$$f" | grep -q 'statically linked' || { echo "$$f is not static: $$(file -b "$$f")"; exit 1; }; \
		go version -m "$$f" | grep -q 'CGO_ENABLED=0' || { echo "$$f: built with cgo"; exit 1; }; \
		echo "$$f: static, $$(du -h "$$f" | cut -f1)"; done

.PHONY: pod
pod: build deps $(BIN)/grpc-health-probe ## Run the L1/L2 manifest's pod locally: cachee, the example app, redis-server as L2, bounded load
	go build -o bin/example-app ./examples/app
	cd deploy && go run ./cmd/pod -kustomize kubernetes/overlays/l1l2 -cachee $(CACHEE) \
		-app $(CURDIR)/bin/example-app -health-probe $(BIN)/grpc-health-probe \
		-duration $(POD_DURATION) -l2 $(POD_L2) $(POD_ARGS)

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
