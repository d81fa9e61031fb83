# Thin wrapper over meson: set-up, build, run, test, bench. Each target
# installs what is missing first (scripts/install-deps.sh).
BUILD      ?= build
ASAN_BUILD ?= build-asan
CONFIG     ?= examples/configs/quickstart.yaml
MESON_OPTS ?= -Dwerror=true

.PHONY: all deps build run test test-fast bench fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./$(BUILD)/polyglot-gw --config $(CONFIG)

# Every suite: unit + integration (normal build), the same under
# ASan+UBSan, the e2e SDK tests, then one "N passed, N failed" line.
test: deps
	@bash scripts/run-tests.sh

# The normal build's unit and integration tests only.
test-fast: build
	meson test -C $(BUILD) --print-errorlogs

bench: build
	@bash bench/run.sh

fuzz: deps
	@bash scripts/fuzz.sh 60

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
