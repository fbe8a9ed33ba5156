# Tandem: the two commands in README.md are `make up` and `make test`.
CARGO ?= cargo
export TANDEM_MODEL_DIR ?= $(HOME)/.cache/tandem/models

.PHONY: up test drill deps build models lint bench fmt clean

## Install what is missing, build, pull the models, start westus + eastus, run the demo, keep serving.
up: deps build models
	./scripts/up.sh

## The whole test suite (unit, conformance, black-box with real processes and real engines),
## with a real S3-compatible server (Garage, installed once if missing) for the S3 tests.
## TANDEM_S3=off skips the server (the S3 tests then skip).
test: deps models-dev
	./scripts/pg-server.sh run ./scripts/s3-server.sh run $(CARGO) test --workspace --all-targets

## The short shipped drill (kill -9 of the primary under load, restart, failback): exits 1 on a
## missed goal. The report lands in target/drill-kill-primary/.
drill: deps models-dev
	./target/debug/tandem drill drills/kill-primary.toml --out target/drill-kill-primary

deps:
	./scripts/install-deps.sh

build: deps
	$(CARGO) build --release --bin tandem

models: build
	./target/release/tandem models pull

# Pulls with the test-profile binary, so `make test` builds the engines only once.
models-dev:
	$(CARGO) build --bin tandem
	./target/debug/tandem models pull

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: deps build models
	./scripts/install-deps.sh --bench
	$(CARGO) run --release -p tandem-bench -- all

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
