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
# Go module proxy: writes the CycloneDX SBOM of each release binary (make release).
CYCLONEDX_GOMOD_VERSION := v1.10.0
GRPCURL_VERSION := v1.9.4
# h2spec (the HTTP/2 conformance suite) has no go.mod: its version and its
# dependencies' are pinned in $(H2SPEC_MOD)/go.mod, and it is built from there.
H2SPEC_MOD := server/h2fast/testdata/h2spec
# redis-py for the RESP tests; keep it equal to redisPyVersion in server/resp/clients_test.go.
REDIS_PY_VERSION := 8.1.0
# Generators for the other languages' stubs, each from its own ecosystem's registry.
# protoc (Maven Central, com.google.protobuf:protoc; libprotoc 36.2) runs the Java and
# Python generators built into it; gencode from it needs protobuf-java >= 4.36.2 and
# Python protobuf >= 7.36.2.
PROTOC_VERSION := 4.36.2
# Maven Central, io.grpc:protoc-gen-grpc-java: 1.83.0 is the newest whose linux-x86_64
# executable Maven Central serves here (1.84.x and 1.85.x are not found).
PROTOC_GEN_GRPC_JAVA_VERSION := 1.83.0
MAVEN_DEPENDENCY_PLUGIN_VERSION := 3.8.1
# npm, @bufbuild/protoc-gen-es (protobuf-es v2).
PROTOC_GEN_ES_VERSION := 2.17.0
# crates.io: prost 0.14 messages and tonic 0.14 clients.
PROTOC_GEN_PROST_VERSION := 0.5.0
PROTOC_GEN_TONIC_VERSION := 0.5.0
# crates.io: cargo-fuzz, for the Rust segment reader's fuzz target (make fuzz-shm).
CARGO_FUZZ_VERSION := 0.13.2
# PyPI, into the venv $(VENV): grpcio-tools generates Python's gRPC stubs, mypy-protobuf
# their .pyi; the rest are the Python SDK's runtime, test and bench dependencies (and
# redis-py at REDIS_PY_VERSION, the reference of the SDK's bench runner).
GRPCIO_TOOLS_VERSION := 1.85.1
MYPY_PROTOBUF_VERSION := 5.1.0
PY_GRPCIO_VERSION := 1.85.1
PY_PROTOBUF_VERSION := 7.36.2
PY_GOOGLEAPIS_COMMON_PROTOS_VERSION := 1.76.0
PY_PYTEST_VERSION := 9.2.0
PY_PYTEST_ASYNCIO_VERSION := 1.5.0
# PyPI: the Python package's build front end and checker (make package-python).
PY_BUILD_VERSION := 1.6.1
PY_TWINE_VERSION := 7.0.0
# PyPI: builds the Python package's native extension (PyO3); keep it equal to
# sdk/python/pyproject.toml's build requirement.
PY_MATURIN_VERSION := 1.16.0

TMP := $(CURDIR)/.tmp
BIN := $(TMP)/bin
export PATH := $(BIN):$(PATH)
export GOBIN := $(BIN)
VENV := $(TMP)/venv
# Everything `make generate` runs besides buf itself.
GEN_TOOLS := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc \
	$(BIN)/protoc-gen-grpc-java $(BIN)/protoc-gen-es $(BIN)/protoc-gen-prost \
	$(BIN)/protoc-gen-tonic $(BIN)/protoc-gen-mypy_grpc

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
# make soak's duration (make test runs it for 45s), and which of test/soak's tests run.
SOAK_TIME ?= 10m
SOAK_TESTS ?= .

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
test: deps tools checkgenerate lint bench-smoke ## Set up a fresh machine, then check generated code, vet and run all tests under -race
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	CACHEE_HEALTH_PROBE=$(BIN)/grpc-health-probe CACHEE_GRPCURL=$(BIN)/grpcurl CACHEE_H2SPEC=$(BIN)/h2spec CACHEE_REQUIRE_TOOLS=1 \
		CACHEE_REDIS_PY=$(TMP)/redispy/bin/python go test -race -timeout 15m $$(go list ./... | grep -v /test/soak)
	CACHEE_TEST_SIDECAR_ARGS=--grpc-fast-path=false go test -race -count=1 ./sdk/go
	$(MAKE) --no-print-directory soak SOAK_TIME=45s
	$(MAKE) --no-print-directory test-sdks
	$(MAKE) --no-print-directory test-deploy

.PHONY: test-sdks
test-sdks: test-shm test-python test-typescript test-java test-rust package-rust test-crosslang ## Test the Python, TypeScript, Java and Rust SDKs against a real cachee

# Each SDK's tests start bin/cachee themselves, on temporary sockets and free ports.
.PHONY: test-python
test-python: build install-python ## Test sdk/python with pytest
	cd sdk/python && CACHEE_BIN=$(CACHEE) $(VENV)/bin/pytest -q -p no:cacheprovider

# install-python puts the wheel package-python built into $(VENV), where the tests, the
# cross-language test and bench/report's Python runner use it: maturin and cargo run
# once, and again only when a file the package is built from changes.
.PHONY: install-python
install-python: package-python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps $(PY_DIST)/cachee-*.whl
	$(VENV)/bin/pip check --disable-pip-version-check >/dev/null

# The Python package as it would be published, from the tracked files of the tree (as
# a clean clone has them): an sdist, then from the unpacked sdist an abi3 wheel with
# the native extension (maturin; cargo's output kept in $(PY_CARGO_TARGET) between
# runs), twine's check of both, and the wheel installed in a fresh venv where no cargo
# is on the PATH, which must load the extension. Into $(PY_DIST).
PY_DIST := $(TMP)/dist/python
PY_PACKAGE_PATHS := sdk/python gen/python sdk/shm
PY_CARGO_TARGET = $(SHM_CARGO_TARGET)
PY_PKG := $(TMP)/package-python
.PHONY: package-python
package-python: $(PY_DIST)/.built ## Build sdk/python's sdist and abi3 wheel from the tracked files; twine check; install the wheel without cargo

$(PY_DIST)/.built: $(shell git ls-files $(PY_PACKAGE_PATHS)) Makefile $(VENV)/.installed
	rm -rf $(PY_PKG) $(PY_DIST) && mkdir -p $(PY_PKG)/tree $(PY_PKG)/sdist $(PY_DIST)
	git ls-files -z $(PY_PACKAGE_PATHS) | tar --null -T - -cf - | tar -x -C $(PY_PKG)/tree
	$(VENV)/bin/python -m build --sdist --outdir $(PY_DIST) $(PY_PKG)/tree/sdk/python
	tar -xzf $(PY_DIST)/cachee-*.tar.gz -C $(PY_PKG)/sdist
	@# --compatibility pypi: the lowest manylinux tag the build allows, which PyPI takes.
	CARGO_TARGET_DIR=$(PY_CARGO_TARGET) MATURIN_PEP517_ARGS="--compatibility pypi" \
		$(VENV)/bin/python -m build --wheel --outdir $(PY_DIST) $(PY_PKG)/sdist/cachee-*
	$(VENV)/bin/twine check --strict $(PY_DIST)/cachee-*
	python3 -m venv $(PY_PKG)/venv
	env PATH=/usr/bin:/bin sh -c '! command -v cargo && ! command -v rustc'
	env PATH=/usr/bin:/bin $(PY_PKG)/venv/bin/pip install --quiet --disable-pip-version-check --only-binary=:all: $(PY_DIST)/cachee-*.whl
	env PATH=/usr/bin:/bin $(PY_PKG)/venv/bin/python -c 'import cachee, cachee._native; print("package-python: the wheel loads", cachee._native.__name__, "without cargo")'
	@touch $@

.PHONY: test-typescript
test-typescript: build install-typescript ## Test sdk/typescript with node's test runner
	cd sdk/typescript && CACHEE_BIN=$(CACHEE) npm run --silent test:only

# install-typescript readies sdk/typescript for its tests, the cross-language test and
# bench/report's runner: npm ci, tsc, and the native addon of the tarball
# package-typescript packed, so that cargo builds the addon once per change of its sources.
.PHONY: install-typescript
install-typescript: package-typescript
	cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build:ts
	tar -xzf $(TS_DIST)/cachee-client-*.tgz -C sdk/typescript/native --strip-components=2 --wildcards 'package/native/*.node'

# The TypeScript package as it would be published, from the tracked files of the tree
# (as a clean clone has them): npm ci, then npm pack, whose prepack build copies gen/ts
# in, compiles, and builds the native addon in release (cargo's output kept in
# $(SHM_CARGO_TARGET)); then the tarball installed by npm in a fresh directory, its
# dependencies resolved from their ranges, and a set and a segment read made through
# it against bin/cachee. Into $(TS_DIST).
TS_DIST := $(TMP)/dist/typescript
TS_PACKAGE_PATHS := sdk/typescript gen/ts sdk/shm
TS_PKG := $(TMP)/package-typescript
.PHONY: package-typescript
package-typescript: build $(TS_DIST)/.built ## Pack sdk/typescript (npm pack, with the native addon for this platform) from the tracked files; install and run it in a fresh directory

$(TS_DIST)/.built: $(shell git ls-files $(TS_PACKAGE_PATHS)) Makefile
	rm -rf $(TS_PKG) $(TS_DIST) && mkdir -p $(TS_PKG)/tree $(TS_DIST)
	git ls-files -z $(TS_PACKAGE_PATHS) | tar --null -T - -cf - | tar -x -C $(TS_PKG)/tree
	cd $(TS_PKG)/tree/sdk/typescript && npm ci --no-audit --no-fund --loglevel=error && \
		CARGO_TARGET_DIR=$(SHM_CARGO_TARGET) npm pack --silent --pack-destination $(TS_DIST)
	node sdk/typescript/scripts/check-package.mjs $(TS_DIST)/cachee-client-*.tgz $(CACHEE)
	@touch $@

.PHONY: test-java
test-java: build package-java ## Test sdk/java with JUnit 5 through Maven
	cd sdk/java && mvn -B -ntp test -Dcachee.bin=$(CACHEE)

.PHONY: package-java
package-java: ## Build sdk/java for Maven Central (jar, sources, javadoc) and check the pom's Central metadata (mvn verify)
	cd sdk/java && mvn -B -ntp -q verify -DskipTests

.PHONY: test-rust
test-rust: build ## Test sdk/rust with cargo test
	cd sdk/rust && CACHEE_BIN=$(CACHEE) cargo test --locked --quiet

# The Rust segment reader, which the Rust, Python and TypeScript SDKs share: the
# conformance fixtures, the layout against the Go writer's, the access buffer.
SHM_CARGO_TARGET := $(TMP)/cargo-shm
.PHONY: test-shm
test-shm: ## Test sdk/shm (the Rust segment reader) with cargo test
	cd sdk/shm && CARGO_TARGET_DIR=$(SHM_CARGO_TARGET) cargo test --locked --quiet

# The Rust crates as crates.io would take them: cachee-proto (gen/rust), cachee-shm and
# cachee. cachee's verifying build takes the other two from their directories, since
# they are not on crates.io yet; it shares sdk/rust's target directory with test-rust.
.PHONY: package-rust
package-rust: ## cargo package the Rust crates (cachee-proto, cachee-shm, cachee), each built from its package
	cd gen/rust && CARGO_TARGET_DIR=$(CURDIR)/sdk/rust/target cargo package --quiet --allow-dirty
	cd sdk/shm && CARGO_TARGET_DIR=$(SHM_CARGO_TARGET) cargo package --quiet --locked --allow-dirty
	cd sdk/rust && cargo package --quiet --locked --allow-dirty \
		--config 'patch.crates-io.cachee-proto.path="../../gen/rust"' --config 'patch.crates-io.cachee-shm.path="../shm"'

.PHONY: test-crosslang
test-crosslang: build install-python install-typescript ## Check that every SDK (and RESP) reads what every other wrote
	cd sdk/java && mvn -B -q test-compile org.apache.maven.plugins:maven-dependency-plugin:$(MAVEN_DEPENDENCY_PLUGIN_VERSION):build-classpath \
		-Dmdep.outputFile=target/classpath.txt
	cd sdk/rust && cargo build --locked --quiet --example xl
	CACHEE_BIN=$(CACHEE) $(VENV)/bin/pytest -q -rs -p no:cacheprovider sdk/crosslang

.PHONY: deps
deps: $(TMP)/redispy/bin/python ## Install what the tests use: redis-server, redis-tools and curl (apt), redis-py (a venv)
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null && \
		command -v curl >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools curl)

# redis-py, the Python client the RESP tests run against the server.
$(TMP)/redispy/bin/python:
	python3 -m venv $(TMP)/redispy
	$(TMP)/redispy/bin/pip install -q redis==$(REDIS_PY_VERSION)

.PHONY: tools
tools: $(GEN_TOOLS) $(BIN)/grpc-health-probe $(BIN)/grpcurl $(BIN)/h2spec $(BIN)/promtool ## Install pinned tools into .tmp/bin

.PHONY: generate
generate: $(GEN_TOOLS) $(VENV)/.installed ## Regenerate gen/<language> from proto/, and the segment fixtures
	buf generate
	@# grpcio-tools is a protoc front end, not a plugin buf can run: it gets buf's image
	@# of the same module, so both read one set of descriptors.
	buf build -o $(TMP)/cachee.binpb
	$(VENV)/bin/python -m grpc_tools.protoc --descriptor_set_in=$(TMP)/cachee.binpb \
		--grpc_python_out=gen/python $$(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
	@# The segment conformance fixtures every shared-memory reader runs (sdk/testdata/segments).
	go run ./store/internal/cmd/segfixtures -out sdk/testdata/segments

.PHONY: checkgenerate
checkgenerate: generate ## Fail if generated code differs from what is committed
	@if [ -n "$$(git status --porcelain -- gen proto sdk/testdata/segments)" ]; then \
		echo "generated code is out of date; run 'make generate' and commit:"; \
		git status --porcelain -- gen proto sdk/testdata/segments; git --no-pager diff --stat -- gen sdk/testdata/segments; exit 1; fi

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
bench: build ## Benchmark cachee beside redis-server, otter and LRU (under 15 min): bench/results/<date>/ and docs/performance.md
	go run ./bench/report -cachee $(CACHEE) -docs docs/performance.md $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: build ## Run every benchmark briefly and check the report's structure, not its figures (under a minute)
	go run ./bench/report -cachee $(CACHEE) -smoke -out $(TMP)/bench-smoke > /dev/null

.PHONY: soak
soak: deps ## Mixed load while the sidecar is SIGKILLed and L2 restarted, for SOAK_TIME (default 10m); then the memory bound under hostile clients
	@# Without -race: the load generator's speed is the point, and cachee is built
	@# without it anyway (its memory is measured).
	SOAK_TIME=$(SOAK_TIME) go test -count=1 -v -timeout 2h -run '$(SOAK_TESTS)' ./test/soak

.PHONY: fuzz-shm
fuzz-shm: $(BIN)/cargo-fuzz ## Fuzz the Rust segment reader (sdk/shm) over arbitrary segment bytes for FUZZ_TIME; crashers land in sdk/shm/fuzz/artifacts
	@# libFuzzer takes whole seconds; cargo fuzz needs nightly flags, which
	@# RUSTC_BOOTSTRAP allows on the stable toolchain.
	t=$(FUZZ_TIME); case $$t in *m) secs=$$(( $${t%m} * 60 ));; *s) secs=$${t%s};; *) secs=$$t;; esac; \
	cd sdk/shm && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(TMP)/cargo-fuzz-target cargo fuzz run --sanitizer none \
		--debug-assertions segment -- -max_total_time=$$secs -rss_limit_mb=1024

.PHONY: fuzz
fuzz: fuzz-shm ## Run every fuzz target for FUZZ_TIME each; crashers land in the package's testdata/fuzz, where go test replays them
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

# deploy/ is its own Go module, so that the Kubernetes API types its tests decode into,
# and the kustomize and helm libraries that render the manifests (pinned in
# deploy/go.mod), stay out of the binary's go.mod. POD_* tune `make pod`; see
# deploy/cmd/pod.
IMAGE_OUT := $(TMP)/image
POD_DURATION ?= 10s
POD_L2 ?= auto
POD_ARGS ?=

.PHONY: test-deploy
test-deploy: deps $(BIN)/grpc-health-probe $(BIN)/promtool image-binary ## Render every manifest and chart, decode strictly, check invariants and the alerts (promtool); build and run this platform's release; run the pod briefly
	@test -z "$$(gofmt -l deploy examples)" || { echo "gofmt needed:"; gofmt -l deploy examples; exit 1; }
	cd deploy && go vet ./...
	cd deploy && DEPLOY_TOOLS_REQUIRED=1 CACHEE_HEALTH_PROBE=$(BIN)/grpc-health-probe PROMTOOL=$(BIN)/promtool \
		IMAGE_OUT=$(IMAGE_OUT) go test -race -timeout 10m ./...

# make release: deploy/cmd/release builds the binaries, archives, SBOMs, checksums and
# Homebrew formula into dist/ (docs/releasing.md); then each SDK's packaging target,
# which that SDK's own Makefile section defines, builds and checks its package.
DIST := $(CURDIR)/dist
RELEASE_ARGS ?=
SDK_PACKAGES := package-python package-typescript package-java package-rust

.PHONY: release
release: $(BIN)/cyclonedx-gomod ## Build a release into dist/: static binaries for linux and darwin (amd64, arm64), archives, SBOMs, checksums, a Homebrew formula; then the SDKs' packages
	cd deploy && go run ./cmd/release -root $(CURDIR) -out $(DIST) -sbom-tool $(BIN)/cyclonedx-gomod $(RELEASE_ARGS)
	@missing=""; for t in $(SDK_PACKAGES); do \
		if grep -qE "^$$t:" $(MAKEFILE_LIST); then $(MAKE) --no-print-directory $$t; \
		else echo "release: there is no make $$t yet (its SDK adds it): that package is NOT in this release" >&2; missing="$$missing $$t"; fi; \
	done; \
	if [ -n "$$missing" ]; then echo "release: incomplete, without$$missing" >&2; exit 1; fi

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
	rm -rf bin dist $(TMP)

$(BIN)/buf: Makefile
	go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@

$(BIN)/protoc-gen-go: Makefile
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@

$(BIN)/protoc-gen-go-grpc: Makefile
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@

$(BIN)/protoc: Makefile
	$(call maven-exe,com.google.protobuf:protoc:$(PROTOC_VERSION))

$(BIN)/protoc-gen-grpc-java: Makefile
	$(call maven-exe,io.grpc:protoc-gen-grpc-java:$(PROTOC_GEN_GRPC_JAVA_VERSION))

# maven-exe copies a native executable that Maven Central serves as
# GROUP:ARTIFACT:VERSION:exe:linux-x86_64 into $@, through Maven's own resolver.
define maven-exe
	mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:$(MAVEN_DEPENDENCY_PLUGIN_VERSION):copy \
		-Dartifact=$(1):exe:linux-x86_64 -Dmdep.stripVersion=true -Dmdep.stripClassifier=true \
		-DoutputDirectory=$(TMP)/maven
	install -m 0755 $(TMP)/maven/$(word 2,$(subst :, ,$(1))).exe $@
endef

$(BIN)/protoc-gen-es: Makefile
	npm install --prefix $(TMP)/protoc-gen-es --no-save --no-audit --no-fund --loglevel=error \
		@bufbuild/protoc-gen-es@$(PROTOC_GEN_ES_VERSION)
	ln -sf $(TMP)/protoc-gen-es/node_modules/.bin/protoc-gen-es $@
	@touch -h $@

# Unoptimized (--debug) builds in one shared target directory: the plugins read one
# small file, and a release build of their dependencies, twice, is most of a cold
# `make generate` on two cores.
CARGO_INSTALL := CARGO_TARGET_DIR=$(TMP)/cargo-target cargo install --quiet --locked --debug --root $(TMP)

$(BIN)/protoc-gen-prost: Makefile
	$(CARGO_INSTALL) protoc-gen-prost@$(PROTOC_GEN_PROST_VERSION)
	@touch $@

$(BIN)/protoc-gen-tonic: Makefile
	$(CARGO_INSTALL) protoc-gen-tonic@$(PROTOC_GEN_TONIC_VERSION)
	@touch $@

$(BIN)/cargo-fuzz: Makefile
	$(CARGO_INSTALL) cargo-fuzz@$(CARGO_FUZZ_VERSION)
	@touch $@

$(BIN)/protoc-gen-mypy_grpc: $(VENV)/.installed
	ln -sf $(VENV)/bin/protoc-gen-mypy_grpc $@
	@touch -h $@

# The venv holds the Python generators and the Python SDK's pinned dependencies.
$(VENV)/.installed: Makefile
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		grpcio-tools==$(GRPCIO_TOOLS_VERSION) mypy-protobuf==$(MYPY_PROTOBUF_VERSION) \
		grpcio==$(PY_GRPCIO_VERSION) protobuf==$(PY_PROTOBUF_VERSION) \
		googleapis-common-protos==$(PY_GOOGLEAPIS_COMMON_PROTOS_VERSION) \
		pytest==$(PY_PYTEST_VERSION) pytest-asyncio==$(PY_PYTEST_ASYNCIO_VERSION) \
		build==$(PY_BUILD_VERSION) twine==$(PY_TWINE_VERSION) maturin==$(PY_MATURIN_VERSION) \
		redis==$(REDIS_PY_VERSION)
	@touch $@

$(BIN)/grpc-health-probe: Makefile
	go install github.com/grpc-ecosystem/grpc-health-probe@$(GRPC_HEALTH_PROBE_VERSION)
	@touch $@

$(BIN)/grpcurl: Makefile
	go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@touch $@

$(BIN)/cyclonedx-gomod: Makefile
	go install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$(CYCLONEDX_GOMOD_VERSION)
	@touch $@

# promtool checks and unit-tests the alert rules (make test-deploy). It comes from
# Debian's prometheus package (bookworm: Prometheus 2.42), downloaded and unpacked into
# .tmp rather than installed, which would start a Prometheus server on :9090; a
# download takes seconds, where building promtool from the Go module proxy compiles
# Prometheus's service discovery and its cloud SDKs.
$(BIN)/promtool: Makefile
	rm -rf $(TMP)/promtool && mkdir -p $(TMP)/promtool $(BIN)
	cd $(TMP)/promtool && { apt-get download -q -o APT::Sandbox::User=root prometheus || \
		{ apt-get update -qq && apt-get download -q -o APT::Sandbox::User=root prometheus; }; }
	dpkg-deb -x $(TMP)/promtool/prometheus_*.deb $(TMP)/promtool/root
	ln -sf $(TMP)/promtool/root/usr/bin/promtool $@
	@touch $@ # the binary's own date is the package's, older than the Makefile
	@$@ --version | head -1

$(BIN)/h2spec: $(H2SPEC_MOD)/go.mod $(H2SPEC_MOD)/go.sum
	cd $(H2SPEC_MOD) && go build -o $@ github.com/summerwind/h2spec/cmd/h2spec
