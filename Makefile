# mm-session: `make demo` runs the main job on generated models, `make test` runs every test.
# Everything builds in the release profile, so llama.cpp is compiled once. This file is an
# index of the targets; the long recipes are scripts under scripts/ (CONTRIBUTING.md says which
# target runs what).

SHELL := /bin/bash
CARGO ?= cargo

# Build modes (docs/building.md, "Build modes"). By default everything is built for the building
# machine's CPU: .cargo/config.toml sets `-C target-cpu=native`, which llama-cpp-sys-2 turns
# into llama.cpp's GGML_NATIVE. PORTABLE=1 builds for CPU_BASELINE instead (a rustc CPU name:
# x86-64-v2, x86-64-v3, x86-64-v4, ...), into target/portable-CPU_BASELINE and
# build/portable-CPU_BASELINE, so that the builds can stay side by side.
# One more name: x86-64-v4-vnni, x86-64-v4 with AVX512-VNNI, VBMI and BF16 (scripts/ggml-cpu-flags.sh).
CPU_BASELINE ?= x86-64-v3
ifdef PORTABLE
TARGET_DIR := target/portable-$(CPU_BASELINE)
BUILD := build/portable-$(CPU_BASELINE)
export CARGO_TARGET_DIR := $(CURDIR)/$(TARGET_DIR)
export RUSTFLAGS := $(shell scripts/ggml-cpu-flags.sh --rustflags $(CPU_BASELINE))
# mm_build_info's name of the level (crates/core/build.rs).
export MM_CPU_LEVEL := $(CPU_BASELINE)
$(foreach flag,$(shell scripts/ggml-cpu-flags.sh $(CPU_BASELINE)),$(eval export $(flag)))
else
TARGET_DIR := target
BUILD := build
endif
LIBDIR := $(TARGET_DIR)/release
LIB := $(LIBDIR)/libmm_session.so
FIXTURES := $(BUILD)/fixtures
DIR ?= $(FIXTURES)
CYCLES ?= 500
REQUESTS ?= 2000
# Tests and stress runs take real models from MM_TEST_MODEL / MM_TEST_MMPROJ when set.
MODEL := $(or $(MM_TEST_MODEL),$(FIXTURES)/tiny-llama.gguf)
MMPROJ := $(or $(MM_TEST_MMPROJ),$(FIXTURES)/tiny-mmproj.gguf)
IMAGE := $(FIXTURES)/tiny-image.png
MODELS := $(MODEL) $(MMPROJ) $(IMAGE)
CFLAGS := -std=c99 -Wall -Wextra -Werror -O2 -Iinclude
LDLIBS := -L$(LIBDIR) -lmm_session -Wl,-rpath,$(CURDIR)/$(LIBDIR)

# Installing: `make install PREFIX=/usr/local` (DESTDIR= for packagers); `make uninstall` removes
# exactly what the install wrote (its manifest lists the files).
PREFIX ?= /usr/local
INSTALL_LIBDIR ?= lib
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The soname's ABI version (crates/capi/build.rs): 0.MINOR while the major version is 0.
SOVERSION := $(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))
INSTALL_ENV = PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) INSTALL_LIBDIR=$(INSTALL_LIBDIR) VERSION=$(VERSION) SOVERSION=$(SOVERSION) LIBDIR=$(LIBDIR)

.PHONY: all deps check-cpu lint build header portable-lib check-dispatch bench-levels dist test-release-dist fixtures demo stress stress-requests bench-followup bench-scale bench bench-decode bench-refusals bench-batch bench-templates gpu-check install uninstall check-install \
        test-cpp test test-rust test-c test-rpc check-symbols check-stress valgrind valgrind-run asan thread-stress fuzz-smoke clean \
        go-deps go-pc test-go bench-go go-module test-release-go test-python bench-python python-fixtures wheel sdist test-release-python \
        node-deps test-node bench-node npm-pack test-release-npm api-docs release test-release

all: build

# The Debian packages a fresh machine lacks, and rustfmt and clippy (scripts/deps.sh).
deps:
	CARGO=$(CARGO) scripts/deps.sh base

# The library's soname is libmm_session.so.$(SOVERSION): programs linked against the build tree
# find it through this link.
build: deps
	$(CARGO) build --release --workspace
	ln -sf libmm_session.so $(LIBDIR)/libmm_session.so.$(SOVERSION)

# Copies the header cbindgen generated during the build over the committed one.
header: build
	cp "$$(ls -t $(LIBDIR)/build/mm-session-*/out/mm_session.h | head -1)" include/mm_session.h

# The generated models (crates/fixtures) into DIR.
fixtures: build
	$(LIBDIR)/mm-fixtures $(DIR)

$(BUILD)/%: examples/c/%.c include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) $< -o $@ $(LDLIBS)

$(BUILD)/bench_followup: examples/c/bench_followup.c examples/c/bench_util.h include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) -D_POSIX_C_SOURCE=200809L $< -o $@ $(LDLIBS) -lpthread

$(BUILD)/test_session: tests/c/test_session.c include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) $< -o $@ $(LDLIBS)

$(LIB): build

# The main job, on the generated pair that sees (mm-fixtures --seeing): two turns of one
# conversation about a red and a blue picture, the memory report, and the one destroy.
SEEING := $(BUILD)/fixtures-seeing
demo: build $(BUILD)/demo
	$(LIBDIR)/mm-fixtures $(SEEING) --seeing >/dev/null
	$(BUILD)/demo $(SEEING)/seeing-llama.gguf $(SEEING)/seeing-mmproj.gguf $(SEEING)/seeing-red.png $(SEEING)/seeing-blue.png

stress: fixtures $(BUILD)/stress
	$(BUILD)/stress $(MODELS) $(CYCLES)

stress-requests: fixtures $(BUILD)/stress
	$(BUILD)/stress $(MODELS) $(REQUESTS) --requests

# A follow-up question with the conversation kept versus re-evaluated, for 1, 4 and 16 images,
# on the larger generated pair, plus cancel latency. RUNS: runs per median.
RUNS ?= 5
bench-followup: build $(BUILD)/bench_followup
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	$(BUILD)/bench_followup $(BUILD)/fixtures-bench/tiny-llama.gguf $(BUILD)/fixtures-bench/tiny-mmproj.gguf $(RUNS)

# The Rust PNG and JPEG decoders against stb_image, which they replaced, on a 1024x1024
# picture: medians of DECODE_RUNS interleaved runs.
DECODE_RUNS ?= 25
bench-decode: build
	$(CARGO) build --release --workspace --example bench-decode
	$(LIBDIR)/examples/bench-decode $(DECODE_RUNS)

# mm-session against raw llama.cpp, stage by stage, interleaved in one process; the real
# model's stages run when MM_TEST_MODEL is set. BENCH_RUNS: runs per stage. On a busy machine,
# MM_BENCH_CLOCK=cpu times each side's thread CPU time instead.
BENCH_RUNS ?= 11
bench: build
	$(CARGO) build --release -p mm-session --example bench
	MM_BENCH_DIR=$(BUILD)/bench-fixtures $(LIBDIR)/examples/bench $(BENCH_RUNS)
	$(MAKE) --no-print-directory bench-decode
	$(MAKE) --no-print-directory bench-levels

# The copy make portable-lib's dispatcher loads here against the native build (prefill and
# generation, MM_TEST_MODEL or the bench pair; scripts/bench-levels.sh).
bench-levels: build $(BUILD)/bench_levels
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	scripts/bench-levels.sh $(BUILD)/bench_levels $(LIBDIR) build/portable-lib $(or $(MM_TEST_MODEL),$(BUILD)/fixtures-bench/tiny-llama.gguf) 5

# Sessions that decode together (n_parallel) against raw llama.cpp batching the same
# sequences: 1, 2, 4 and 8 sessions of 64 tokens each, then the time to first token of a
# session that joins 7 generating ones (crates/capi/examples/bench_batch.rs). On MM_TEST_MODEL
# when set, else the bench pair's text model. BATCH_RUNS: runs per median; never fails.
BATCH_RUNS ?= 3
bench-batch: build
	$(CARGO) build --release -p mm-session --example bench_batch
	MM_BENCH_DIR=$(BUILD)/bench-fixtures $(LIBDIR)/examples/bench_batch $(BATCH_RUNS)

# What rendering a chat costs (two runs of llama.cpp's chat layer) against one
# common_chat_templates_apply, llama-server's render, for each test template
# (examples/bench_templates.rs).
bench-templates: build
	$(CARGO) build --release -p mm-session --example bench_templates
	MM_BENCH_DIR=$(BUILD)/bench-fixtures $(LIBDIR)/examples/bench_templates

# How long the worst inputs outside testers found take to be refused or answered, against the
# goal of 1 s for an input of up to 1 MB (crates/capi/examples/refusals.rs); never fails.
bench-refusals: build
	$(CARGO) build --release -p mm-session --example refusals
	MM_BENCH_DIR=$(BUILD)/bench-fixtures $(LIBDIR)/examples/refusals

# GPU memory and speed with llama.cpp's CUDA backend (scripts/gpu-check.sh). DRY=1: the same
# program built for the CPU, with a few cycles and GPU memory reported as n/a (make test). On a
# GPU it then runs bench-batch's program with the model offloaded (goal: speedup_vs_one >= 4).
gpu-check:
	DRY=$(DRY) CYCLES=$(if $(DRY),3,100) BATCH_RUNS=$(BATCH_RUNS) CARGO=$(CARGO) scripts/gpu-check.sh

# Formatting (rustfmt.toml) and clippy with every warning an error, over the whole workspace
# and all its targets. Clippy runs in the release profile, as everything here does: it reuses
# the build's llama.cpp (a dev-profile run would compile llama.cpp once more).
lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# A portable test run needs a machine that runs its CPU_BASELINE.
check-cpu:
	@$(if $(PORTABLE),scripts/cpu-level.sh --runs $(CPU_BASELINE),true)

test: check-cpu lint build test-rust test-c test-cpp test-go test-python test-node check-install check-symbols check-dispatch check-stress valgrind asan $(BUILD)/bench_followup $(BUILD)/bench_scale
	$(MAKE) --no-print-directory gpu-check DRY=1
	@echo "make test: all checks passed"

# Model tests must not run in parallel: one thread each on a 2-core machine.
test-rust: build
	$(CARGO) test --release -- --test-threads=1

# One model over several machines (docs/rpc.md): tests/capi/rpc.rs, whose servers run on
# 127.0.0.1 (one is killed in the middle of a request). test-rust runs it too; this shows its
# figures. The last line gives the loopback cost.
test-rpc: build
	$(CARGO) test --release -p mm-session --test capi -- rpc:: --test-threads=1 --nocapture

test-c: fixtures $(BUILD)/test_session
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-mismatch --proj-out 7 >/dev/null
	$(BUILD)/test_session $(MODEL) $(MMPROJ) $(IMAGE) $(BUILD)/fixtures-mismatch/tiny-mmproj.gguf

# Only mm_* symbols exported; no fixture-generator code shipped (scripts/check-symbols.sh).
check-symbols: build
	@scripts/check-symbols.sh $(LIBDIR)

# The memory promise: resident memory may not grow over cycles or requests
# (scripts/check-stress.sh, docs/performance.md).
check-stress: fixtures $(BUILD)/stress
	@scripts/check-stress.sh $(BUILD)/stress $(MODELS)

# The C tests (20 create/destroy cycles instead of 500) and 20 stress cycles under valgrind
# memcheck with the settings users run it with: any error, any definitely or possibly lost byte
# fails; no suppressions are needed. valgrind (3.19 on Debian 12) cannot decode some
# instructions a native build uses (AVX-512, SHA-NI, VAES, ...): the programs always run against
# a portable build for the level scripts/cpu-level.sh picks, which the first run compiles.
VALGRIND := valgrind --leak-check=full --error-exitcode=1 -q --suppressions=tests/valgrind.supp
valgrind:
	@level=$$(scripts/cpu-level.sh); \
	if [ "$(if $(PORTABLE),$(CPU_BASELINE))" = "$$level" ]; then $(MAKE) --no-print-directory valgrind-run; \
	else echo "valgrind: on a build for $$level"; $(MAKE) --no-print-directory valgrind-run PORTABLE=1 CPU_BASELINE=$$level; fi

valgrind-run: test-c $(BUILD)/stress
	MM_CYCLES=20 $(VALGRIND) $(BUILD)/test_session $(MODELS) $(BUILD)/fixtures-mismatch/tiny-mmproj.gguf
	$(VALGRIND) $(BUILD)/stress $(MODELS) 20
	$(VALGRIND) $(BUILD)/stress $(MODELS) 10 --batched

# The same C programs built with AddressSanitizer (and LeakSanitizer): the library is not
# instrumented, but every allocation it makes goes through ASan's allocator, so double frees,
# frees of foreign pointers and leaks anywhere in the process are caught.
ASAN_RUN := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
asan: test-c
	gcc $(CFLAGS) -fsanitize=address -fno-omit-frame-pointer -g tests/c/test_session.c -o $(BUILD)/test_session_asan $(LDLIBS)
	gcc $(CFLAGS) -fsanitize=address -fno-omit-frame-pointer -g examples/c/stress.c -o $(BUILD)/stress_asan $(LDLIBS)
	$(ASAN_RUN) MM_CYCLES=50 $(BUILD)/test_session_asan $(MODELS) $(BUILD)/fixtures-mismatch/tiny-mmproj.gguf
	$(ASAN_RUN) $(BUILD)/stress_asan $(MODELS) 50
	$(ASAN_RUN) $(BUILD)/stress_asan $(MODELS) 20 --batched

# Fuzzing (fuzz/README.md): the inputs fuzzing found (fuzz/regressions), then each of the five
# libFuzzer harnesses for a short time with a fixed seed (`make -C fuzz long` explores at
# random), in the AddressSanitizer build of target/fuzz-asan. Any finding fails it.
fuzz-smoke: build
	FUZZ_FLAGS="-rss_limit_mb=2048 -timeout=0 -detect_leaks=0 -seed=1" $(MAKE) -C fuzz regress smoke

$(BUILD)/bench_scale: examples/c/bench_scale.c examples/c/bench_util.h include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) $< -o $@ $(LDLIBS) -lpthread

# Many conversations on one model: 8 forks against 8 creates, a shared 4-image prefix forked 8
# times, 8 threads on 8 forks; Gemma (any text model) too when MM_TEST_MODEL is set.
bench-scale: build $(BUILD)/bench_scale
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	$(BUILD)/bench_scale $(BUILD)/fixtures-bench/tiny-llama.gguf $(BUILD)/fixtures-bench/tiny-mmproj.gguf $(MM_TEST_MODEL)

# `make install PREFIX=... [DESTDIR=...]`, `make uninstall` (scripts/install.sh).
install: build
	@$(INSTALL_ENV) scripts/install.sh install

uninstall:
	@$(INSTALL_ENV) scripts/install.sh uninstall

# The library every package ships (scripts/portable-lib.sh): a copy for each x86-64 level
# (v2, v3, v4) and the dispatcher that loads the best one this CPU runs, in build/portable-lib,
# whatever PORTABLE says.
portable-lib:
	@VERSION=$(VERSION) SOVERSION=$(SOVERSION) scripts/portable-lib.sh build/portable-lib

# The dispatcher's choices, on three copies of this build (scripts/check-dispatch.sh).
check-dispatch: build fixtures
	@scripts/check-dispatch.sh $(LIB) $(MODELS)

# The release tarball for C and C++ users, dist/mm-session-$(VERSION)-linux-x86_64.tar.gz:
# headers, build/portable-lib's libraries, relocatable .pc and CMake files (scripts/dist.sh).
DIST_TARBALL := dist/mm-session-$(VERSION)-linux-x86_64.tar.gz
dist: portable-lib
	@VERSION=$(VERSION) SOVERSION=$(SOVERSION) scripts/dist.sh build/portable-lib dist

# That tarball unpacked into a fresh folder: its contents, soname, CPU level, then the consumers
# of check-install built against it (scripts/test-release-dist.sh). Run `make dist` first.
test-release-dist: fixtures
	@VERSION=$(VERSION) SOVERSION=$(SOVERSION) scripts/test-release-dist.sh $(DIST_TARBALL) $(BUILD) $(MODELS)

# Installed-tree consumers: C with pkg-config (shared, static), C++ with CMake; then uninstall
# (scripts/check-install.sh).
check-install: fixtures
	@VERSION=$(VERSION) SOVERSION=$(SOVERSION) scripts/check-install.sh $(BUILD) $(MODELS)

# The C++ header's tests: g++ with AddressSanitizer (run), clang++ (compiled), both with
# -std=c++17 -Wall -Wextra -Werror -pedantic.
CXXFLAGS_STRICT := -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude
test-cpp: fixtures
	@mkdir -p $(BUILD)
	g++ $(CXXFLAGS_STRICT) -fsanitize=address -fno-omit-frame-pointer -g tests/cpp/test_session.cpp -o $(BUILD)/test_session_cpp $(LDLIBS) -lpthread
	clang++-14 $(CXXFLAGS_STRICT) tests/cpp/test_session.cpp -o $(BUILD)/test_session_cpp_clang $(LDLIBS) -lpthread
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(BUILD)/test_session_cpp $(MODELS)
	$(BUILD)/test_session_cpp_clang $(MODELS)

# Go (bindings/go/README.md): cgo through a pkg-config file for this source tree (go-pc).
GO ?= go
GO_PC := $(BUILD)/pkgconfig/mm-session.pc
GO_ROUNDS ?= 1000

go-deps:
	@GO=$(GO) scripts/deps.sh go

go-pc: $(GO_PC)
$(GO_PC): cmake/mm-session.pc.in Cargo.toml
	@mkdir -p $(@D)
	$(INSTALL_ENV) scripts/install.sh subst -e 's|^libdir=.*|libdir=$(CURDIR)/$(LIBDIR)|' -e 's|^prefix=.*|prefix=$(CURDIR)|' $< > $@

# gofmt, go vet, the tests with -race and with cgocheck=2, the example against an installed
# prefix (scripts/go.sh).
test-go: build fixtures go-deps $(GO_PC)
	@GO=$(GO) scripts/go.sh test $(BUILD) $(LIBDIR) $(MODELS)

# The files a GOPROXY serves for bindings/go at v$(VERSION), in dist/goproxy, and the go.sum lines
# they give (scripts/go-module.sh); test-release-go: a fresh program that `go get`s the module
# from that folder alone and runs the describe example against a fresh `make install` prefix.
go-module:
	@GO=$(GO) scripts/go-module.sh build dist $(VERSION)

test-release-go: build fixtures go-deps go-module
	@GO=$(GO) scripts/go-module.sh test dist $(VERSION) $(MODELS)

# The binding's overhead on one request against the C API, GO_ROUNDS rounds; never fails.
bench-go: build fixtures go-deps $(GO_PC)
	GO=$(GO) scripts/go.sh bench $(BUILD) $(LIBDIR) $(GO_ROUNDS)

# Python (bindings/python/README.md): a venv under build/ with what the tests use from PyPI
# (cffi, pytest, and NumPy and Pillow for the optional media kinds; the package needs only cffi),
# and ruff, pinned (its rules change between versions).
PY_RUFF := 0.17.5
PY_VENV := $(BUILD)/venv-python
PY := $(PY_VENV)/bin/python
# llama-cpp-python for make bench-python's comparison column (skipped when it does not import).
LCP_PYTHON ?= /work/venv-lcp/bin/python

$(PY):
	@scripts/deps.sh python
	python3 -m venv $(PY_VENV)
	$(PY) -m pip install -q cffi pytest numpy pillow ruff==$(PY_RUFF)

python-fixtures: fixtures
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-seeing --seeing >/dev/null
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-audio --audio >/dev/null
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null

# ruff, pytest, then a fresh venv from source and from the wheel (scripts/python.sh).
test-python: build python-fixtures $(PY)
	scripts/python.sh test $(BUILD) $(PY_VENV) $(PY_RUFF)

# The packages a user installs (scripts/python-release.sh, bindings/python/README.md): `make
# wheel` bundles every .so file of build/portable-lib (x86-64-v3, not this machine's CPU) into a
# py3-none wheel and runs auditwheel repair, into dist/; `make sdist` writes
# dist/mm_session-VERSION.tar.gz with the Rust workspace inside, which pip builds with cargo;
# `make test-release-python` installs dist/'s manylinux wheel offline into a fresh venv and asks
# the seeing pair about the red picture, with no Rust and no source tree in sight.
wheel: portable-lib $(PY)
	scripts/python-release.sh wheel $(BUILD) $(PY_VENV)

sdist: $(PY)
	scripts/python-release.sh sdist $(BUILD) $(PY_VENV)

test-release-python: wheel python-fixtures $(PY)
	scripts/python-release.sh test $(BUILD) $(PY_VENV)

# Every package of a release into dist/ (the manylinux wheel, the sdist, the two npm tarballs,
# the Go module's GOPROXY folder, the C tarball), then their SHA-256 sums (dist/SHA256SUMS).
release: wheel sdist npm-pack go-module dist
	@scripts/release-sums.sh dist $(VERSION)

# Each package installed and used as a user would, from dist/ alone (not part of make test:
# make portable-lib builds llama.cpp four times).
test-release: release test-release-python test-release-npm test-release-go test-release-dist

# llama-cpp-python against this package on the bench pair (bindings/python/bench/bench.py).
bench-python: build python-fixtures $(PY)
	scripts/python.sh bench $(BUILD) $(PY_VENV) $(LCP_PYTHON)

# Node.js (bindings/node/README.md): npm installs koffi (prebuilt, nothing compiles) and
# TypeScript into bindings/node/node_modules; Node.js and npm come from apt when missing.
NODE_DIR := bindings/node
NODE_RUNS ?= 41
node-deps: $(NODE_DIR)/node_modules/.installed

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@scripts/deps.sh node
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# npm run lint (node --check, tsc --noEmit), then node:test one file at a time (model tests
# never run in parallel): the API on the generated pairs, errors, cancels, the event loop,
# 200 create/ask/close cycles, disposal, logs, the library search, the ABI, tool calls.
test-node: build node-deps
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-node --seeing --audio >/dev/null
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	cd $(NODE_DIR) && npm run lint && npm test

# The npm packages, as tarballs in dist/ (scripts/npm-pack.sh): mm-session-$(VERSION).tgz (the
# JavaScript) and mm-session-linux-x64-gnu-$(VERSION).tgz (@mm-session/linux-x64-gnu, the
# portable-lib library), the second an optional dependency of the first.
npm-pack: portable-lib
	@VERSION=$(VERSION) scripts/npm-pack.sh build/portable-lib dist

# The two tarballs installed as a user would, in a temporary folder, offline, with no other
# library in reach (scripts/test-release-npm.sh): the pair that sees must answer "red".
test-release-npm: build npm-pack node-deps
	@VERSION=$(VERSION) scripts/test-release-npm.sh dist $(LIBDIR)/mm-fixtures

# Per-request time through the Node API against mm_session_ask called directly, NODE_RUNS
# requests each (medians); the last line is node_overhead_pct=X.
bench-node: build node-deps
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	cd $(NODE_DIR) && node bench/bench.js $(NODE_RUNS)

# Threads: the stress mix of tests/capi/threads.rs for SECONDS (make test runs it for 5).
SECONDS ?= 30
thread-stress: build
	MM_STRESS_SECONDS=$(SECONDS) $(CARGO) test --release --test capi threads::stress_mix -- --nocapture

# The API reference from include/mm_session.h's comments, with Doxygen, into build/api-docs.
api-docs:
	@scripts/deps.sh doxygen
	doxygen Doxyfile
	@echo "api-docs: build/api-docs/html/index.html"

clean:
	rm -rf $(BUILD)
	$(CARGO) clean
