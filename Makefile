# mm-session: `make demo` runs the main job on generated models, `make test` runs every test.
# Everything builds in the release profile, so llama.cpp is compiled once.

SHELL := /bin/bash
CARGO ?= cargo

# Build modes (README, "Build modes"). By default everything is built for the building
# machine's CPU: .cargo/config.toml sets `-C target-cpu=native`, which llama-cpp-sys-2 turns
# into llama.cpp's GGML_NATIVE. PORTABLE=1 builds for CPU_BASELINE instead (a rustc CPU name:
# x86-64-v2, x86-64-v3, x86-64-v4, ...), into target/portable-CPU_BASELINE and
# build/portable-CPU_BASELINE, so that the builds can stay side by side.
CPU_BASELINE ?= x86-64-v3
ifdef PORTABLE
TARGET_DIR := target/portable-$(CPU_BASELINE)
BUILD := build/portable-$(CPU_BASELINE)
export CARGO_TARGET_DIR := $(CURDIR)/$(TARGET_DIR)
export RUSTFLAGS := -C target-cpu=$(CPU_BASELINE)
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
CFLAGS := -std=c99 -Wall -Wextra -Werror -O2 -Iinclude
LDLIBS := -L$(LIBDIR) -lmm_session -Wl,-rpath,$(CURDIR)/$(LIBDIR)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Installing: `make install PREFIX=/usr/local` (DESTDIR= for packagers); `make uninstall` removes
# exactly what the install wrote (its manifest lists the files).
PREFIX ?= /usr/local
INSTALL_LIBDIR ?= lib
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The soname's ABI version (crates/capi/build.rs): 0.MINOR while the major version is 0.
SOVERSION := $(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))
# What a static link of libmm_session.a needs from the system (rustc --print native-static-libs).
LIBS_PRIVATE := -lstdc++ -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
DEST = $(DESTDIR)$(PREFIX)
MANIFEST = share/mm-session/install-manifest.txt
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(INSTALL_LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@SOVERSION@|$(SOVERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' -e 's|@MINOR@|$(MINOR)|g' -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g'

.PHONY: all deps check-cpu lint build header fixtures demo stress stress-requests bench-followup bench-scale bench bench-decode bench-refusals gpu-check install uninstall check-install \
        test-cpp test test-rust test-c test-rpc check-symbols check-stress valgrind valgrind-run asan thread-stress fuzz-smoke clean \
        go-deps go-pc test-go bench-go test-python bench-python python-fixtures \
        node-deps test-node bench-node

all: build

# Installs what a fresh Debian machine lacks: cmake and a C/C++ compiler for llama.cpp,
# libclang for bindgen, valgrind for the leak check, clang with libFuzzer for fuzzing.
deps:
	@missing=""; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	command -v valgrind >/dev/null || missing="$$missing valgrind"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	command -v clang-14 >/dev/null || missing="$$missing clang-14 libclang-rt-14-dev"; \
	ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ldconfig -p | grep -q 'libclang.*\.so' || missing="$$missing libclang-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi; \
	command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)"; exit 1; }; \
	$(CARGO) fmt --version >/dev/null 2>&1 && $(CARGO) clippy --version >/dev/null 2>&1 || rustup component add rustfmt clippy

# The library's soname is libmm_session.so.$(SOVERSION): programs linked against the build tree
# find it through this link.
build: deps
	$(CARGO) build --release --workspace
	ln -sf libmm_session.so $(LIBDIR)/libmm_session.so.$(SOVERSION)

# Copies the header cbindgen generated during the build over the committed one.
header: build
	cp "$$(ls -t $(LIBDIR)/build/mm-session-*/out/mm_session.h | head -1)" include/mm_session.h

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
	$(BUILD)/stress $(MODEL) $(MMPROJ) $(IMAGE) $(CYCLES)

stress-requests: fixtures $(BUILD)/stress
	$(BUILD)/stress $(MODEL) $(MMPROJ) $(IMAGE) $(REQUESTS) --requests

# A follow-up question with the conversation kept versus re-evaluated, for 1, 4 and 16 images,
# on the larger generated pair (FixtureSpec::bench), plus cancel latency. RUNS: runs per median.
RUNS ?= 5
bench-followup: build $(BUILD)/bench_followup
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	$(BUILD)/bench_followup $(BUILD)/fixtures-bench/tiny-llama.gguf $(BUILD)/fixtures-bench/tiny-mmproj.gguf $(RUNS)

# Decoding a 1024x1024 PNG and JPEG (baseline and progressive) with the Rust decoders against
# stb_image, which they replaced, in one process: medians of DECODE_RUNS interleaved runs.
DECODE_RUNS ?= 25
bench-decode: build
	$(CARGO) build --release --workspace --example bench-decode
	$(LIBDIR)/examples/bench-decode $(DECODE_RUNS)

# mm-session against raw llama.cpp, stage by stage, interleaved in one process (README,
# "Benchmarks"); the real model's stages run when MM_TEST_MODEL is set. BENCH_RUNS: runs per
# stage. On a busy machine, MM_BENCH_CLOCK=cpu times each side's thread CPU time instead.
BENCH_RUNS ?= 11
bench: build
	$(CARGO) build --release -p mm-session --example bench
	MM_BENCH_DIR=$(BUILD)/bench-fixtures $(LIBDIR)/examples/bench $(BENCH_RUNS)
	$(MAKE) --no-print-directory bench-decode

# How long the worst inputs outside testers found take to be refused or answered, against the
# goal of 1 s for an input of up to 1 MB (crates/capi/examples/refusals.rs); never fails.
bench-refusals: build
	$(CARGO) build --release -p mm-session --example refusals
	MM_BENCH_DIR=$(BUILD)/bench-fixtures $(LIBDIR)/examples/refusals

# GPU memory and speed with llama.cpp's CUDA backend (scripts/gpu-check.sh). DRY=1: the same
# program built for the CPU, with a few cycles and GPU memory reported as n/a (make test).
gpu-check:
	DRY=$(DRY) CYCLES=$(if $(DRY),3,100) CARGO=$(CARGO) scripts/gpu-check.sh

# Formatting (rustfmt.toml) and clippy with every warning an error, over the whole workspace
# and all its targets. Clippy runs in the release profile, as everything here does: it reuses
# the build's llama.cpp (a dev-profile run would compile llama.cpp once more).
lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# A portable test run needs a machine that runs its CPU_BASELINE.
check-cpu:
	@$(if $(PORTABLE),scripts/cpu-level.sh --runs $(CPU_BASELINE),true)

test: check-cpu lint build test-rust test-c test-cpp test-go test-python test-node check-install check-symbols check-stress valgrind asan $(BUILD)/bench_followup $(BUILD)/bench_scale
	$(MAKE) --no-print-directory gpu-check DRY=1
	@echo "make test: all checks passed"

# Model tests must not run in parallel: one thread each on a 2-core machine.
test-rust: build
	$(CARGO) test --release -- --test-threads=1

# One model over several machines (README): tests/capi/rpc.rs, whose servers run on 127.0.0.1 (one
# is killed in the middle of a request). test-rust runs it too; this shows its figures. The last
# line gives the loopback cost.
test-rpc: build
	$(CARGO) test --release -p mm-session --test capi -- rpc:: --test-threads=1 --nocapture

test-c: fixtures $(BUILD)/test_session
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-mismatch --proj-out 7 >/dev/null
	$(BUILD)/test_session $(MODEL) $(MMPROJ) $(IMAGE) $(BUILD)/fixtures-mismatch/tiny-mmproj.gguf

# The shared library exports mm_* symbols only (llama.cpp and ggml stay hidden), and contains
# no code of the fixture generator (a development tool in its own crate).
check-symbols: build
	@extra=$$(nm -D --defined-only $(LIB) | awk '{print $$3}' | grep -v '^mm_' | grep -Ev '^(_init|_fini|__bss_start|_edata|_end)$$' || true); \
	if [ -n "$$extra" ]; then echo "exported symbols beyond mm_*:"; echo "$$extra" | head; exit 1; fi; \
	fixture=$$(nm --defined-only $(LIB) $(LIBDIR)/libmm_session.a 2>/dev/null | grep -ci 'mm_fixtures' || true); \
	if [ "$$fixture" != "0" ]; then echo "the shipped library contains $$fixture fixture-generator symbols"; exit 1; fi; \
	echo "check-symbols: $$(nm -D --defined-only $(LIB) | grep -c ' mm_') symbols, all mm_*; no fixture-generator code"

# The memory promise, measured with glibc's malloc as it comes: resident memory may not grow
# over create/ask/destroy cycles (limit 1024 kB from cycle 10 to 500) nor over requests on one
# session (1024 kB over 2000). Unloading a model hands the heap's free pages back (malloc_trim);
# before it did, glibc's dynamic mmap threshold let llama.cpp's compute buffers land in the heap
# where allocation history put them, and resident memory wandered by megabytes with nothing held.
check-stress: fixtures $(BUILD)/stress
	@for mode in "500 1024" "2000 1024 --requests"; do \
	  set -- $$mode; \
	  line=$$($(BUILD)/stress $(MODEL) $(MMPROJ) $(IMAGE) $$1 $$3 | tail -1) || exit 1; \
	  echo "$$line"; growth=$${line##*growth_kb=}; \
	  [ "$$growth" -lt "$$2" ] || { echo "check-stress: growth $$growth kB, limit $$2 kB"; exit 1; }; \
	done

# The C tests (20 create/destroy cycles instead of 500) and 20 stress cycles under valgrind
# memcheck with the settings users run it with: any error, any definitely or possibly lost
# byte fails. No suppressions are needed.
# valgrind (3.19 on Debian 12) cannot decode some instructions a native build uses on a CPU that
# has them (AVX-512, SHA-NI, VAES, ...): the programs always run against a portable build for
# the level scripts/cpu-level.sh picks by what valgrind decodes and this machine runs (x86-64-v3
# on any CPU with AVX2), which the first run compiles.
VALGRIND := valgrind --leak-check=full --error-exitcode=1 -q
valgrind:
	@level=$$(scripts/cpu-level.sh); \
	if [ "$(if $(PORTABLE),$(CPU_BASELINE))" = "$$level" ]; then $(MAKE) --no-print-directory valgrind-run; \
	else echo "valgrind: on a build for $$level"; $(MAKE) --no-print-directory valgrind-run PORTABLE=1 CPU_BASELINE=$$level; fi

valgrind-run: test-c $(BUILD)/stress
	MM_CYCLES=20 $(VALGRIND) $(BUILD)/test_session $(MODEL) $(MMPROJ) $(IMAGE) $(BUILD)/fixtures-mismatch/tiny-mmproj.gguf
	$(VALGRIND) $(BUILD)/stress $(MODEL) $(MMPROJ) $(IMAGE) 20

# The same C programs built with AddressSanitizer (and LeakSanitizer): the library itself is
# not instrumented, but every allocation it makes goes through ASan's allocator, so double
# frees, frees of foreign pointers and leaks anywhere in the process are caught.
asan: test-c
	gcc $(CFLAGS) -fsanitize=address -fno-omit-frame-pointer -g tests/c/test_session.c -o $(BUILD)/test_session_asan $(LDLIBS)
	gcc $(CFLAGS) -fsanitize=address -fno-omit-frame-pointer -g examples/c/stress.c -o $(BUILD)/stress_asan $(LDLIBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 MM_CYCLES=50 $(BUILD)/test_session_asan $(MODEL) $(MMPROJ) $(IMAGE) $(BUILD)/fixtures-mismatch/tiny-mmproj.gguf
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(BUILD)/stress_asan $(MODEL) $(MMPROJ) $(IMAGE) 50

# Fuzzing (fuzz/README.md): the inputs fuzzing found (fuzz/regressions), then each of the five
# libFuzzer harnesses for a short time, with a fixed seed so that a run repeats the same
# mutations (the longer runs, `make -C fuzz long`, explore at random). The build is the
# AddressSanitizer one: the first compiles llama.cpp with coverage and ASan in target/fuzz-asan
# (the only instrumented llama.cpp build). Any finding, a memory error included, fails it.
fuzz-smoke: build
	FUZZ_FLAGS="-rss_limit_mb=2048 -timeout=0 -detect_leaks=0 -seed=1" $(MAKE) -C fuzz regress smoke

# Many conversations on one model: 8 forks against 8 creates (memory, time), a shared 4-image
# prefix forked 8 times, 8 threads on 8 forks. On the bench pair, plus Gemma (or any text
# model) for the create/fork times when MM_TEST_MODEL is set.
$(BUILD)/bench_scale: examples/c/bench_scale.c examples/c/bench_util.h include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) $< -o $@ $(LDLIBS) -lpthread

bench-scale: build $(BUILD)/bench_scale
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	$(BUILD)/bench_scale $(BUILD)/fixtures-bench/tiny-llama.gguf $(BUILD)/fixtures-bench/tiny-mmproj.gguf $(MM_TEST_MODEL)

install: build
	@set -e; L=$(INSTALL_LIBDIR); \
	install -d "$(DEST)/include" "$(DEST)/$$L/pkgconfig" "$(DEST)/$$L/cmake/mm-session" "$(DEST)/share/mm-session"; \
	install -m 644 include/mm_session.h include/mm_session.hpp "$(DEST)/include/"; \
	install -m 755 $(LIB) "$(DEST)/$$L/libmm_session.so.$(VERSION)"; \
	ln -sf libmm_session.so.$(VERSION) "$(DEST)/$$L/libmm_session.so.$(SOVERSION)"; \
	ln -sf libmm_session.so.$(SOVERSION) "$(DEST)/$$L/libmm_session.so"; \
	install -m 644 $(LIBDIR)/libmm_session.a "$(DEST)/$$L/"; \
	$(SUBST) cmake/mm-session.pc.in > "$(DEST)/$$L/pkgconfig/mm-session.pc"; \
	$(SUBST) cmake/mm-sessionConfig.cmake.in > "$(DEST)/$$L/cmake/mm-session/mm-sessionConfig.cmake"; \
	$(SUBST) cmake/mm-sessionConfigVersion.cmake.in > "$(DEST)/$$L/cmake/mm-session/mm-sessionConfigVersion.cmake"; \
	printf '%s\n' include/mm_session.h include/mm_session.hpp $$L/libmm_session.so.$(VERSION) $$L/libmm_session.so.$(SOVERSION) \
	  $$L/libmm_session.so $$L/libmm_session.a $$L/pkgconfig/mm-session.pc $$L/cmake/mm-session/mm-sessionConfig.cmake \
	  $$L/cmake/mm-session/mm-sessionConfigVersion.cmake $(MANIFEST) > "$(DEST)/$(MANIFEST)"; \
	echo "installed mm-session $(VERSION) (soname libmm_session.so.$(SOVERSION)) into $(DEST)"

uninstall:
	@set -e; test -f "$(DEST)/$(MANIFEST)" || { echo "no mm-session install manifest in $(DEST)"; exit 1; }; \
	for f in $$(cat "$(DEST)/$(MANIFEST)"); do rm -f "$(DEST)/$$f"; done; \
	for d in share/mm-session $(INSTALL_LIBDIR)/cmake/mm-session $(INSTALL_LIBDIR)/cmake $(INSTALL_LIBDIR)/pkgconfig $(INSTALL_LIBDIR) include share; do \
	  rmdir "$(DEST)/$$d" 2>/dev/null || true; done; \
	echo "removed mm-session from $(DEST)"

# Consumers of an installed tree, built against that prefix only: the C example with
# pkg-config (shared), the same statically with `pkg-config --static` from a copy of the tree
# without libmm_session.so, and a CMake project (find_package) with the C++ example, shared and
# static; each runs on the generated models. Then uninstall leaves the prefix empty.
check-install: fixtures
	@set -e; P=$$(mktemp -d); S=$$(mktemp -d); B=$(CURDIR)/$(BUILD)/consumer; rm -rf "$$B"; mkdir -p "$$B"; \
	$(MAKE) --no-print-directory install PREFIX="$$P" >/dev/null; \
	readelf -d "$$P/lib/libmm_session.so.$(VERSION)" | grep -q "SONAME.*libmm_session.so.$(SOVERSION)"; \
	echo "check-install: soname libmm_session.so.$(SOVERSION)"; \
	export PKG_CONFIG_PATH="$$P/lib/pkgconfig"; \
	gcc -std=c99 -Wall -Wextra -Werror examples/c/describe.c $$(pkg-config --cflags --libs mm-session) -Wl,-rpath,"$$P/lib" -o "$$B/describe"; \
	"$$B/describe" $(MODEL) $(MMPROJ) $(IMAGE) | tail -1 | grep -qx "live sessions: 0"; \
	echo "check-install: C with pkg-config: live sessions: 0"; \
	cp -a "$$P/." "$$S/"; rm -f "$$S"/lib/libmm_session.so*; sed -i "s|^prefix=.*|prefix=$$S|" "$$S/lib/pkgconfig/mm-session.pc"; \
	gcc -std=c99 -Wall -Wextra -Werror examples/c/describe.c $$(PKG_CONFIG_PATH="$$S/lib/pkgconfig" pkg-config --static --cflags --libs mm-session) -o "$$B/describe_static"; \
	! readelf -d "$$B/describe_static" | grep -q libmm_session; \
	"$$B/describe_static" $(MODEL) $(MMPROJ) $(IMAGE) | tail -1 | grep -qx "live sessions: 0"; \
	echo "check-install: C static with pkg-config --static, no libmm_session.so present: live sessions: 0"; \
	cmake -S tests/consumer -B "$$B/cmake" -DCMAKE_PREFIX_PATH="$$P" -DDESCRIBE_SOURCE=$(CURDIR)/examples/cpp/describe.cpp -DCMAKE_BUILD_TYPE=Release >/dev/null; \
	cmake --build "$$B/cmake" >/dev/null; \
	for exe in describe_cpp describe_cpp_static; do "$$B/cmake/$$exe" $(MODEL) $(MMPROJ) $(IMAGE) | tail -1 | grep -qx "live sessions: 0"; done; \
	echo "check-install: C++ with CMake find_package (shared and static): live sessions: 0"; \
	$(MAKE) --no-print-directory uninstall PREFIX="$$P" >/dev/null; \
	left=$$(find "$$P" -mindepth 1 | head -3); test -z "$$left" || { echo "uninstall left: $$left"; exit 1; }; \
	echo "check-install: uninstall removed everything"; rm -rf "$$P" "$$S"

# The C++ header's tests: g++ with AddressSanitizer (run), clang++ (compiled), both with
# -std=c++17 -Wall -Wextra -Werror -pedantic.
CXXFLAGS_STRICT := -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude
test-cpp: fixtures
	@mkdir -p $(BUILD)
	g++ $(CXXFLAGS_STRICT) -fsanitize=address -fno-omit-frame-pointer -g tests/cpp/test_session.cpp -o $(BUILD)/test_session_cpp $(LDLIBS) -lpthread
	clang++-14 $(CXXFLAGS_STRICT) tests/cpp/test_session.cpp -o $(BUILD)/test_session_cpp_clang $(LDLIBS) -lpthread
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(BUILD)/test_session_cpp $(MODEL) $(MMPROJ) $(IMAGE)
	$(BUILD)/test_session_cpp_clang $(MODEL) $(MMPROJ) $(IMAGE)

# Go (bindings/go, README "Go"): the module links the library with cgo through pkg-config.
# go-pc writes a pkg-config file for this source tree (target/release, include/); the tests
# and the benchmark build against it, and examples/go/describe against a fresh `make install`
# prefix, as a user's program would. Go comes from Debian's golang-go (1.19) when missing.
GO ?= go
GO_PC := $(BUILD)/pkgconfig/mm-session.pc
# Go's build cache does not look at headers outside the package: CGO_CFLAGS carries a hash of
# mm_session.h, so that a changed header rebuilds the cgo code instead of reusing old layouts.
GO_HEADER_FLAGS = CGO_CFLAGS="-g -O2 -DMM_SESSION_H_SHA256=$$(sha256sum $(1) | cut -c1-16)"
GO_ENV := PKG_CONFIG_PATH=$(CURDIR)/$(BUILD)/pkgconfig CGO_LDFLAGS="-Wl,-rpath,$(CURDIR)/$(LIBDIR)" \
	$(call GO_HEADER_FLAGS,$(CURDIR)/include/mm_session.h) MM_FIXTURES=$(CURDIR)/$(LIBDIR)/mm-fixtures
GO_BENCH := $(GO) test -count=1 -run '^$$' -bench Overhead
GO_ROUNDS ?= 1000

go-deps:
	@command -v $(GO) >/dev/null || { echo "installing: golang-go"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq golang-go >/dev/null; }

go-pc: $(GO_PC)
$(GO_PC): cmake/mm-session.pc.in Cargo.toml
	@mkdir -p $(@D)
	$(SUBST) -e 's|^libdir=.*|libdir=$(CURDIR)/$(LIBDIR)|' -e 's|^prefix=.*|prefix=$(CURDIR)|' $< > $@

# gofmt and go vet; the tests under the race detector (cgocheck=1, the default); the tests again
# without it and with cgocheck=2 (every pointer store checked: GODEBUG before Go 1.21,
# GOEXPERIMENT since), which also measures the 200-cycle memory test; the overhead benchmark for
# 2 rounds, which checks that both halves answer alike (its figures are make bench-go's);
# examples/go/describe built against an installed prefix and run on the tiny pair.
test-go: build fixtures go-deps $(GO_PC)
	@unformatted=$$(gofmt -l bindings/go examples/go); [ -z "$$unformatted" ] || { echo "gofmt -l:" $$unformatted; exit 1; }
	cd bindings/go && $(GO_ENV) $(GO) vet ./...
	cd examples/go && $(GO_ENV) $(GO) vet ./...
	cd bindings/go && $(GO_ENV) $(GO) test -race -count=1 ./...
	set -o pipefail; cd bindings/go && check2=$$($(GO) env GOVERSION | awk -F. '{print ($$2 >= 21 ? "GOEXPERIMENT=cgocheck2" : "GODEBUG=cgocheck=2")}'); \
	$(GO_ENV) env $$check2 $(GO) test -count=1 -v ./... | grep -E '^(--- FAIL|ok|FAIL)|_test.go:'
	set -o pipefail; cd bindings/go && $(GO_ENV) $(GO_BENCH) -benchtime 2x | grep -E '^(--- FAIL|ok|FAIL)|_test.go:'
	@set -e; P=$$(mktemp -d); B=$(CURDIR)/$(BUILD)/go; mkdir -p "$$B"; \
	$(MAKE) --no-print-directory install PREFIX="$$P" >/dev/null; \
	(cd examples/go && PKG_CONFIG_PATH="$$P/lib/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$$P/lib" $(call GO_HEADER_FLAGS,"$$P/include/mm_session.h") \
	  $(GO) build -o "$$B/describe" ./describe); \
	"$$B/describe" $(MODEL) $(MMPROJ) $(IMAGE) | tail -1 | grep -qx "live sessions: 0"; \
	echo "test-go: examples/go/describe, built against an installed prefix: live sessions: 0"; \
	$(MAKE) --no-print-directory uninstall PREFIX="$$P" >/dev/null; rm -rf "$$P"

# The binding's overhead on one request against the C API called directly (GO_ROUNDS rounds),
# printed with its goal (Ask: under +3% of CPU time); a figure never fails the run.
bench-go: build fixtures go-deps $(GO_PC)
	cd bindings/go && $(GO_ENV) $(GO_BENCH) -benchtime $(GO_ROUNDS)x

# The Python package (bindings/python): a venv under build/ with what the tests use from PyPI
# (cffi, pytest, and NumPy and Pillow for the optional media kinds; the package needs only cffi),
# and ruff, pinned (its rules change between versions), which lints and formats bindings/python
# by the [tool.ruff] settings of bindings/python/pyproject.toml.
PY_RUFF := 0.17.5
PY_VENV := $(BUILD)/venv-python
PY := $(PY_VENV)/bin/python
PY_FRESH := $(BUILD)/venv-python-fresh
PY_FIXTURES := MM_FIXTURES_DIR=$(CURDIR)/$(FIXTURES) MM_SEEING_DIR=$(CURDIR)/$(BUILD)/fixtures-seeing \
	MM_AUDIO_DIR=$(CURDIR)/$(BUILD)/fixtures-audio MM_BENCH_DIR=$(CURDIR)/$(BUILD)/fixtures-bench
# llama-cpp-python for make bench-python's comparison column (skipped when it does not import).
LCP_PYTHON ?= /work/venv-lcp/bin/python

$(PY):
	@command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "installing: python3 python3-venv"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3 python3-venv >/dev/null; }
	python3 -m venv $(PY_VENV)
	$(PY) -m pip install -q cffi pytest numpy pillow ruff==$(PY_RUFF)

python-fixtures: fixtures
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-seeing --seeing >/dev/null
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-audio --audio >/dev/null
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null

# ruff check and ruff format --check first (a venv made before ruff was pinned, or with another
# version, gets the pinned one); then the pytest suite on the installed package (its bundled
# library), then the two ways users install it, each in a fresh venv and run from outside the
# repository: from source (`pip install bindings/python`), and from the wheel with no Rust on
# the PATH. No Python test asserts a duration or a speed (bindings/python/tests/conftest.py).
test-python: build python-fixtures $(PY)
	$(PY) -m ruff --version 2>/dev/null | grep -qx 'ruff $(PY_RUFF)' || $(PY) -m pip install -q ruff==$(PY_RUFF)
	$(PY) -m ruff check --no-cache bindings/python
	$(PY) -m ruff format --check --no-cache bindings/python
	$(PY) -m pip install -q --force-reinstall --no-deps ./bindings/python
	cd $(BUILD) && $(PY_FIXTURES) MM_SESSION_EXPECT_ORIGIN=bundled $(CURDIR)/$(PY_VENV)/bin/pytest -q -p no:cacheprovider $(CURDIR)/bindings/python/tests
	rm -rf $(PY_FRESH) $(BUILD)/wheels
	$(PY) -m venv $(PY_FRESH)
	$(PY_FRESH)/bin/pip install -q ./bindings/python
	cd /tmp && $(CURDIR)/$(PY_FRESH)/bin/python $(CURDIR)/bindings/python/tests/smoke.py $(CURDIR)/$(BUILD)/fixtures-seeing bundled
	$(PY) -m pip wheel -q --no-deps -w $(BUILD)/wheels ./bindings/python
	$(PY_FRESH)/bin/pip uninstall -q -y mm-session
	cd /tmp && env PATH=/usr/bin:/bin $(CURDIR)/$(PY_FRESH)/bin/pip install -q $(CURDIR)/$(BUILD)/wheels/mm_session-*.whl
	cd /tmp && env -i PATH=/usr/bin:/bin HOME=$$HOME $(CURDIR)/$(PY_FRESH)/bin/python $(CURDIR)/bindings/python/tests/smoke.py $(CURDIR)/$(BUILD)/fixtures-seeing bundled
	@echo "test-python: wheel $$(ls $(BUILD)/wheels)"

# llama-cpp-python against this package on the bench pair (bindings/python/bench/bench.py).
bench-python: build python-fixtures $(PY)
	$(PY) -m pip install -q --force-reinstall --no-deps ./bindings/python
	$(PY) bindings/python/bench/bench.py $(BUILD)/fixtures-bench/tiny-llama.gguf $(BUILD)/fixtures-bench/tiny-mmproj.gguf \
	  $(BUILD)/fixtures-bench/tiny-image.png --lcp-python $(LCP_PYTHON)

# The Node.js package (bindings/node). npm installs its dependencies into
# bindings/node/node_modules: koffi, whose native part comes prebuilt for the platform (nothing
# compiles), and TypeScript for the declaration checks. Node.js and npm come from apt when missing.
NODE_DIR := bindings/node
NODE_RUNS ?= 41
node-deps: $(NODE_DIR)/node_modules/.installed

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing: nodejs npm"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# node:test, one file at a time (model tests never run in parallel): the API on the generated
# pairs, errors and cancels, the event loop during create and long asks on the bench pair, two
# sessions at once, 200 create/ask/close cycles, disposal, logs, the library search, the ABI.
# First npm run lint (scripts/lint.js): node --check of every .js/.mjs file, and tsc --noEmit
# (strict) over index.d.ts, lib/abi.d.ts and test/types/usage.ts.
test-node: build node-deps
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-node --seeing --audio >/dev/null
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	cd $(NODE_DIR) && npm run lint && npm test

# Per-request time through the Node API against mm_session_ask called directly, on the bench
# pair, NODE_RUNS requests each (medians); the last line is node_overhead_pct=X.
bench-node: build node-deps
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	cd $(NODE_DIR) && node bench/bench.js $(NODE_RUNS)

# Threads: the stress mix of tests/capi/threads.rs for SECONDS (make test runs it for 5).
SECONDS ?= 30
thread-stress: build
	MM_STRESS_SECONDS=$(SECONDS) $(CARGO) test --release --test capi threads::stress_mix -- --nocapture

clean:
	rm -rf $(BUILD)
	$(CARGO) clean
