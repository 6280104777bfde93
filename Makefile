# The two commands of the README, and the pieces they are made of.
#   make demo   install what is missing, build, start services + mcsd + a
#               simulated fleet, print where everything is
#   make test   install what is missing, build (normal + ASan/UBSan), run unit
#               and integration tests against real services; prints
#               "N passed, N failed"
#   make bench  run every benchmark; prints `name: value` lines
#               (ONLY=group[,group] runs only those: bench/README.md)
#   make fuzz   run every libFuzzer target for FUZZ_SECONDS each (docs/FUZZING.md)
#   make licensed  start the vendor's license server locally (make licensed-stop)
JOBS ?= 2
FUZZ_SECONDS ?= 300

.PHONY: all build build-asan build-fuzz deps test fuzz demo demo-stop bench lint format clean \
        licensed licensed-stop

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@MAKEFLAGS= cmake --build build -j $(JOBS)
	@bash scripts/web.sh build

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMCS_SANITIZE=ON >/dev/null
	@MAKEFLAGS= cmake --build build-asan -j $(JOBS)

build-fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMCS_FUZZ=ON >/dev/null
	@MAKEFLAGS= cmake --build build-fuzz --target fuzzers -j $(JOBS)

test: deps
	@bash scripts/test.sh

fuzz: build-fuzz
	@cd build-fuzz && FUZZ_SECONDS=$(FUZZ_SECONDS) ctest -L fuzz --output-on-failure \
	  -j $(JOBS) --timeout $$(($(FUZZ_SECONDS) + 120))

demo: build
	@bash scripts/demo.sh start

demo-stop:
	@bash scripts/demo.sh stop

# The vendor's license server (issue #17) alone, on a free port with a
# certificate of its own and the demo vendor key: docs/OPERATIONS.md "License".
licensed: build
	@bash scripts/svc.sh licd .run/licensed
	@grep '^LICENSE_' .run/licensed/env
	@echo "log: .run/licensed/license/licd.log   stop: make licensed-stop"

licensed-stop:
	@bash scripts/svc.sh licd-stop .run/licensed

bench: build
	@ONLY='$(ONLY)' bash bench/run.sh

lint:
	@bash scripts/lint.sh

format:
	@clang-format -i src/*/*.c src/*/*.h bench/*.c bench/*.h tests/unit/*.c tests/fuzz/*.c tests/fuzz/*.h \
	  firmware/*/*.c firmware/*/*.h

clean:
	rm -rf build build-asan build-fuzz
