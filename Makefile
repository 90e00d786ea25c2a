# Thin wrapper over CMake. `make run` and `make test` install what is missing first (scripts/deps.sh).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

PREFIX ?= /usr/local

.PHONY: all deps build run test test-asan bench soak clean quickstart fuzz format install

all: build

deps:
	@scripts/deps.sh

$(BUILD)/Makefile: CMakeLists.txt tests/CMakeLists.txt
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: deps $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

quickstart: build
	@scripts/quickstart-data.sh $(BUILD)/bin

run: quickstart
	cd examples/quickstart && exec ../../$(BUILD)/bin/spiced

test: build
	@scripts/test.sh $(BUILD)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
test-asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan CMAKE_FLAGS="-DSPICE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"

# libFuzzer: every tests/fuzz/fuzz_*.c built with clang (-DSPICE_FUZZ=ON) in build-fuzz, each run for FUZZ_SECONDS
# on a temporary copy of its corpus; fails on any crash (inputs kept in build-fuzz/fuzz-artifacts/).
FUZZ_SECONDS ?= 60
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) CC=clang JOBS=$(JOBS) scripts/fuzz.sh build-fuzz

# Installs spiced, spice, DuckDB's library (in lib/spicec), man pages and the systemd unit under PREFIX.
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# BENCH_FLAGS: e.g. --quick, --only "tpch http", --reps 9 (see docs/benchmarks.md).
bench: build
	@bench/run.sh $(BUILD) $(BENCH_FLAGS)

# Mixed HTTP/Flight/write/refresh load while the PostgreSQL source restarts, then a verdict (tests/e2e/soak.mjs).
SOAK_SECONDS ?= 3600
soak: build
	@cd tests/e2e && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && \
	  SPICED=$(CURDIR)/$(BUILD)/bin/spiced SOAK_SECONDS=$(SOAK_SECONDS) node soak.mjs

clean:
	rm -rf $(BUILD) build-asan
