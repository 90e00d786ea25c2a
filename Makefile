# Thin wrapper over CMake. `make run` and `make test` install what is missing first (scripts/deps.sh).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-asan bench clean quickstart fuzz format

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

bench: build
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
