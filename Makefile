# flokraft: one command to run everything locally, one to test everything.
# Prerequisites: Python 3.11+, Node 20 (npm), make; uv is installed if missing.

SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
FIRESTORE_NODE_MODULES := tools/firestore-emulator/node_modules/@firestore-emulator/server
CLIENTS_NODE_MODULES := clients/typescript/node_modules/openapi-typescript/package.json
K8S_TOOLS := .tools/bin/helm .tools/bin/kubectl

.PHONY: help install dev dev-observability dev-containers images engine test test-fast lint typecheck token seed \
        backfill-markers render-k8s clients \
        bench-query bench-events bench-rerun bench-analyzer bench-engine bench-pubsub clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --user --quiet uv

.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)
	$(UV) sync --frozen
	@touch $@

# One more dependency group (pyproject.toml: browser, deploy, bench) on top of the default
# ones, for the targets that use it; --inexact keeps the groups installed before it.
.venv/.synced-%: .venv/.synced
	$(UV) sync --frozen --inexact --group $*
	@touch $@

$(FIRESTORE_NODE_MODULES): tools/firestore-emulator/package-lock.json
	cd tools/firestore-emulator && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CLIENTS_NODE_MODULES): clients/typescript/package-lock.json
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(K8S_TOOLS):
	bash scripts/install-k8s-tools.sh

install: .venv/.synced $(FIRESTORE_NODE_MODULES) $(CLIENTS_NODE_MODULES) ## install Python and npm dependencies
	@true

dev: install ## run the emulators and the three services (Ctrl-C stops everything)
	$(UV) run --frozen python -m flokraft_devstack up

dev-observability: install ## make dev plus Prometheus on localhost:9090 (the chart's alert rules loaded)
	DEV_PROMETHEUS=true $(UV) run --frozen python -m flokraft_devstack up

engine: ## start a Docker engine (installs Debian's docker.io as root when none answers)
	bash scripts/container-engine.sh

images: ## build flokraft-{query-api,rerun-api,analyzer}:local into the local engine (no registry needed)
	bash scripts/build-images.sh

dev-containers: install $(K8S_TOOLS) images ## the chart's pods in the engine (ports 18001-18003; Ctrl-C stops)
	$(UV) run --frozen python -m tests.containers.devstack

test: install .venv/.synced-browser .venv/.synced-deploy $(K8S_TOOLS) ## the whole test-suite (starts its own emulators on free ports)
	$(UV) run --frozen pytest

test-fast: install .venv/.synced-browser ## the tests without the deploy validation
	$(UV) run --frozen pytest --ignore=tests/deploy

lint: install ## ruff and mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

typecheck: lint

token: install ## print a local token: make token uid=alice [admin=1]
	@$(UV) run --frozen python -m flokraft_core.dev.devauth token --uid "$(or $(uid),alice)" $(if $(admin),--admin)

seed: install ## write N demo analyses into the running dev stack: make seed n=1000
	FIRESTORE_EMULATOR_HOST=$${FIRESTORE_EMULATOR_HOST:-127.0.0.1:8080} \
	  $(UV) run --frozen python -m flokraft_core.dev.demo_data --n "$(or $(n),1000)"
	@# The demo data is written directly, as the old backend wrote it: give its users markers.
	FIRESTORE_EMULATOR_HOST=$${FIRESTORE_EMULATOR_HOST:-127.0.0.1:8080} \
	  $(UV) run --frozen python -m flokraft_core.store.change_markers backfill

backfill-markers: install ## create change markers for users who have none (documents the old backend wrote)
	FIRESTORE_EMULATOR_HOST=$${FIRESTORE_EMULATOR_HOST:-127.0.0.1:8080} \
	  $(UV) run --frozen python -m flokraft_core.store.change_markers backfill

clients: install ## regenerate clients/: both OpenAPI documents and their TypeScript types
	$(UV) run --frozen python clients/generate.py

render-k8s: $(K8S_TOOLS) ## regenerate k8s/ from the helm chart
	bash scripts/render-k8s.sh

bench-query: install .venv/.synced-bench ## query-api's polls (full, conditional, listener) vs the raw query and the old backend's fixed endpoint (prints numbers, writes plots)
	$(UV) run --frozen python bench/query_bench.py $(BENCH_ARGS)
	$(UV) run --frozen python bench/plot_query_bench.py

bench-events: install .venv/.synced-bench ## 2,000 event streams opened paced and in a burst: peak RSS against the 256 MiB limit, per-stream memory, idle CPU, write-to-event latency (prints numbers, writes a plot)
	$(UV) run --frozen python bench/events_bench.py $(BENCH_ARGS)
	$(UV) run --frozen python bench/plot_events_bench.py

bench-rerun: install ## create and rerun, HTTP vs the bare command: latency, CPU, Firestore reads/writes
	$(UV) run --frozen python bench/rerun_bench.py

bench-analyzer: install ## worker/child peak RSS, frames/s, rerun-to-done time
	$(UV) run --frozen python bench/analyzer_bench.py

bench-engine: install ## the analysis engine alone on 1- and 10-minute 720p videos
	$(UV) run --frozen python bench/analyzer_engine_bench.py

bench-pubsub: install ## Pub/Sub emulator throughput and backlog memory
	$(UV) run --frozen python tools/pubsub-emulator/bench_emulator.py

clean: ## remove local state (emulator data lives in memory only)
	rm -rf .local .venv/.synced .venv/.synced-*
