# mm-session: `make demo` runs the main job on generated models, `make test` runs every test.
# Everything builds in the release profile, so llama.cpp is compiled once.

SHELL := /bin/bash
CARGO ?= cargo
LIBDIR := target/release
# RPC=1 builds with llama.cpp's RPC backend (cargo feature `rpc`, GGML_RPC=ON; README, "One
# model over several machines") in a target directory of its own, so that switching between the
# two builds never recompiles llama.cpp. RDMA stays off: its library would not be linked.
RPC_ENV := GGML_RPC=ON GGML_RPC_RDMA=OFF CARGO_TARGET_DIR=target/rpc
ifeq ($(RPC),1)
CARGO_ENV := $(RPC_ENV)
FEATURES := --features rpc
LIBDIR := target/rpc/release
endif
LIB := $(LIBDIR)/libmm_session.so
BUILD := build
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

.PHONY: all deps build header fixtures demo stress stress-requests bench-followup bench-scale test test-rust \
        test-c test-rpc check-symbols check-stress valgrind asan thread-stress fuzz-smoke clean

all: build

# Installs what a fresh Debian machine lacks: cmake and a C/C++ compiler for llama.cpp,
# libclang for bindgen, valgrind for the leak check, clang with libFuzzer for fuzzing.
deps:
	@missing=""; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	command -v valgrind >/dev/null || missing="$$missing valgrind"; \
	command -v clang-14 >/dev/null || missing="$$missing clang-14 libclang-rt-14-dev"; \
	ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ldconfig -p | grep -q 'libclang.*\.so' || missing="$$missing libclang-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi; \
	command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)"; exit 1; }

build: deps
	$(CARGO_ENV) $(CARGO) build --release --workspace $(FEATURES)

# Copies the header cbindgen generated during the build over the committed one.
header: build
	cp "$$(ls -t $(LIBDIR)/build/mm-session-*/out/mm_session.h | head -1)" include/mm_session.h

fixtures: build
	$(LIBDIR)/mm-fixtures $(DIR)

$(BUILD)/%: examples/c/%.c include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) $< -o $@ $(LDLIBS)

$(BUILD)/bench_followup: examples/c/bench_followup.c include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) -D_POSIX_C_SOURCE=200809L $< -o $@ $(LDLIBS) -lpthread

$(BUILD)/test_session: tests/c/test_session.c include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) $< -o $@ $(LDLIBS)

$(LIB): build

demo: fixtures $(BUILD)/describe
	$(BUILD)/describe $(MODEL) $(MMPROJ) $(IMAGE) $(IMAGE) -p "What is in these two pictures?"

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

test: build test-rust test-c check-symbols check-stress valgrind asan $(BUILD)/bench_followup $(BUILD)/bench_scale test-rpc
	@echo "make test: all checks passed"

# Model tests must not run in parallel: one thread each on a 2-core machine.
test-rust: build
	$(CARGO) test --release -- --test-threads=1

# One model over several machines: the library built with RPC (in target/rpc: the first time
# compiles llama.cpp again), then its unit tests and tests/rpc.rs, whose servers run on
# 127.0.0.1 (one is killed in the middle of a request). The last line gives the loopback cost.
test-rpc: deps
	$(RPC_ENV) $(CARGO) test --release --features rpc -p mm-session-core -p mm-session --lib --test rpc -- --test-threads=1 --nocapture

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

# The memory promise, measured: resident memory may not grow over create/ask/destroy cycles
# (limit 2048 kB from cycle 10 to 500) nor over requests on one session (1024 kB over 2000).
check-stress: fixtures $(BUILD)/stress
	@for mode in "500 2048" "2000 1024 --requests"; do \
	  set -- $$mode; \
	  line=$$($(BUILD)/stress $(MODEL) $(MMPROJ) $(IMAGE) $$1 $$3 | tail -1) || exit 1; \
	  echo "$$line"; growth=$${line##*growth_kb=}; \
	  [ "$$growth" -lt "$$2" ] || { echo "check-stress: growth $$growth kB, limit $$2 kB"; exit 1; }; \
	done

# The C tests (20 create/destroy cycles instead of 500) and 20 stress cycles under valgrind
# memcheck with the settings users run it with: any error, any definitely or possibly lost
# byte fails. No suppressions are needed.
VALGRIND := valgrind --leak-check=full --error-exitcode=1 -q
valgrind: test-c $(BUILD)/stress
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

# Fuzzing (fuzz/README.md): the inputs fuzzing found (fuzz/regressions), then each of the four
# libFuzzer harnesses for a short time, with a fixed seed so that a run repeats the same
# mutations (the longer runs, `make -C fuzz long`, explore at random). The first build compiles
# an instrumented llama.cpp in target/fuzz. Any finding fails it.
fuzz-smoke: build
	FUZZ_FLAGS="-rss_limit_mb=2048 -timeout=0 -detect_leaks=0 -seed=1" $(MAKE) -C fuzz regress smoke

# Many conversations on one model: 8 forks against 8 creates (memory, time), a shared 4-image
# prefix forked 8 times, 8 threads on 8 forks. On the bench pair, plus Gemma (or any text
# model) for the create/fork times when MM_TEST_MODEL is set.
$(BUILD)/bench_scale: examples/c/bench_scale.c include/mm_session.h $(LIB)
	@mkdir -p $(BUILD)
	gcc $(CFLAGS) $< -o $@ $(LDLIBS) -lpthread

bench-scale: build $(BUILD)/bench_scale
	$(LIBDIR)/mm-fixtures $(BUILD)/fixtures-bench --size bench >/dev/null
	$(BUILD)/bench_scale $(BUILD)/fixtures-bench/tiny-llama.gguf $(BUILD)/fixtures-bench/tiny-mmproj.gguf $(MM_TEST_MODEL)

# Threads: the stress mix of tests/threads.rs for SECONDS (make test runs it for 5).
SECONDS ?= 30
thread-stress: build
	MM_STRESS_SECONDS=$(SECONDS) $(CARGO) test --release --test threads stress_mix -- --nocapture

clean:
	rm -rf $(BUILD)
	$(CARGO) clean
