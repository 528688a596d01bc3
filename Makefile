# The two commands of the README, and a few more.
#   make run     install what is missing, build (release), serve the tutorial's epoll server on :7890
#   make test    install what is missing, build, run the whole test suite through CTest
#   make bench   install the peers too, build, run the shootout and write the report
#   make check   the style (clang-format), each source compiled alone, resp against redis-server, the tests under ASan+UBSan and TSan, then each fuzzer for FUZZ_SECONDS (60)
#   make fuzz    build the fuzzers (clang) and run each for FUZZ_SECONDS (600)
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# Unity build: CMake compiles each target's sources in batches of 8 as one file, parsing the
# shared headers (GoogleTest, fmt, the STL) once per batch instead of once per file: 115 s
# instead of 330 s for the whole release tree on 2 cores. `make test UNITY=OFF` compiles file
# by file (what an incremental rebuild of one edited file wants). A unity build can hide an
# include a file forgot; `make check` compiles every file alone (scripts/check.sh includes).
UNITY ?= ON

.PHONY: deps build run test bench check fuzz clean install

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=$(UNITY) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/iomux serve --model epoll --host 0.0.0.0 --port 7890

# The differential tests (resp against redis-server) run in `make check`.
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300 -LE differential

bench:
	@scripts/install-deps.sh --bench
	@$(MAKE) --no-print-directory build
	$(BUILD_DIR)/iomux shootout --out results

check: FUZZ_SECONDS ?= 60
check: deps
	JOBS=$(JOBS) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/check.sh

fuzz: FUZZ_SECONDS ?= 600
fuzz: deps
	JOBS=$(JOBS) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/check.sh fuzz

clean:
	rm -rf $(BUILD_DIR) build-includes build-asan build-tsan build-fuzz
