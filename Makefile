# Gleaner — the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help setup build demo test lint fmt bench bench-clean bench-app app app-build package clean-demo

help:
	@echo "make demo         run the whole network on this machine (sample site, validator, nodes)"
	@echo "make test         install what is missing, build, run every test"
	@echo "make lint         rustfmt check, clippy and rustdoc with -D warnings"
	@echo "make fmt          format the code"
	@echo "make bench        all benchmarks (print figures)"
	@echo "make bench-clean  cleaner quality and speed on ../shared/bench/wcxb-dev"
	@echo "make app          run the desktop app;  make app-build: its release binary;  make package: .deb"

setup:
	@scripts/setup.sh

build:
	$(CARGO) build --workspace

demo:
	@scripts/demo.sh

test: setup
	@scripts/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench --workspace

bench-clean:
	$(CARGO) bench -p gleaner-collector --bench clean

bench-app:
	src-tauri/scripts/bench.sh

app: setup
	src-tauri/scripts/app.sh

app-build: setup
	src-tauri/scripts/app-build.sh

package: setup
	src-tauri/scripts/package.sh

clean-demo:
	rm -rf demo-output
