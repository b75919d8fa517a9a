# shopstream — the one entry point. `make run` and `make test` set up everything they need.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT       := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
RUN_DIR    := $(ROOT)/.run
TOOLS_BIN  := $(RUN_DIR)/tools/bin
UV_VERSION := 0.13.9
PYTHON     ?= python3
UV         := $(shell command -v uv 2>/dev/null || echo $(TOOLS_BIN)/uv)
# buf comes from the buf-bin wheel in the locked dev dependencies (no Go toolchain needed).
BUF        := $(ROOT)/.venv/bin/buf
PROTO_DIR  ?= protos
# Every Python source tree that exists (services appear as they land).
PY_SRC     := $(wildcard libs tools services/*/)
# mypy --strict covers the shipped code; tests are linted by ruff, not type-checked.
MYPY_SRC   := libs/platform/src $(wildcard tools/*/src services/*/src) libs/protos/generate.py \
              deploy/k8s/gen_kafka.py deploy/images/grpc_health_check.py
# Python under deploy/ (the manifest generator, the image health check, the deployment checks).
DEPLOY_PY  := deploy/images deploy/k8s deploy/tests
PROTO_STAMP := libs/protos/src/shopstream/.stamp
PROTOS     := $(shell find protos -name '*.proto' -o -name 'topics.yaml')

include deploy/kafka/kafka.mk

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

# --- set-up -----------------------------------------------------------------------------------

.PHONY: setup system-deps python-deps
setup: system-deps python-deps proto kafka-jars ## Install everything (system packages, Python deps, Kafka jars, generated code)

system-deps: ## Debian packages the tests need (PostgreSQL server, Prometheus), Java and Maven checks
	@command -v java >/dev/null || { echo "Java 17+ is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required (apt-get install maven)"; exit 1; }
	@missing=""; \
	  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  [ -x /usr/bin/prometheus ] || missing="$$missing prometheus"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "missing Debian packages: run 'sudo apt-get install$$missing'"; exit 1; fi; \
	  fi

$(TOOLS_BIN)/uv:
	@mkdir -p $(TOOLS_BIN)
	@echo "installing uv $(UV_VERSION) into $(TOOLS_BIN)"
	@$(PYTHON) -m pip install -q --target $(RUN_DIR)/tools/uv-pkg "uv==$(UV_VERSION)"
	@ln -sf $(RUN_DIR)/tools/uv-pkg/bin/uv $(TOOLS_BIN)/uv

python-deps: $(if $(findstring $(TOOLS_BIN),$(UV)),$(TOOLS_BIN)/uv) ## Create .venv from uv.lock (all workspace packages)
	@$(UV) sync --frozen --all-packages --quiet

.PHONY: proto
proto: $(PROTO_STAMP) ## Generate Python code from protos/ into libs/protos

$(PROTO_STAMP): $(PROTOS) libs/protos/generate.py | python-deps
	@$(UV) run --frozen python libs/protos/generate.py
	@touch $@

# kustomize is a Go module: built once into .run/tools/bin, like the pinned uv.
KUSTOMIZE_VERSION := v5.7.1
KUSTOMIZE  := $(TOOLS_BIN)/kustomize
GO         ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
STRIMZI_DIR := $(RUN_DIR)/strimzi
STRIMZI_SRC := $(shell find deploy/k8s/strimzi/src -name '*.java')

.PHONY: deploy-tools
deploy-tools: $(KUSTOMIZE) $(STRIMZI_DIR)/classes/.stamp ## kustomize and the Strimzi model checker that test-deploy uses (built once)

$(KUSTOMIZE):
	@[ -x "$(GO)" ] || { echo "Go is required to build kustomize (apt-get install golang)"; exit 1; }
	@echo "building kustomize $(KUSTOMIZE_VERSION) (first time only)"
	@mkdir -p $(TOOLS_BIN)
	@GOBIN=$(TOOLS_BIN) GOFLAGS=-mod=mod $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# The operator's API model and its runtime deps from Maven Central, and the checker compiled
# against them; again only when the pom or the checker changes.
$(STRIMZI_DIR)/classes/.stamp: deploy/k8s/strimzi/pom.xml $(STRIMZI_SRC)
	@command -v javac >/dev/null || { echo "a JDK 17+ is required (apt-get install openjdk-17-jdk-headless)"; exit 1; }
	@echo "fetching the Strimzi API model and building deploy/k8s/strimzi"
	@rm -rf $(STRIMZI_DIR)
	@mvn -q -B -Dstyle.color=never -f deploy/k8s/strimzi/pom.xml dependency:copy-dependencies@strimzi-libs -DoutputDirectory=$(STRIMZI_DIR)/libs
	@mkdir -p $(STRIMZI_DIR)/classes
	@javac -nowarn -d $(STRIMZI_DIR)/classes -cp '$(STRIMZI_DIR)/libs/*' $(STRIMZI_SRC)
	@touch $@

# --- checks -----------------------------------------------------------------------------------

.PHONY: proto-check proto-release proto-baseline-check lint format
proto-check: python-deps ## Lint protos, check the baseline knows every file, check for breaking changes
	@cd $(PROTO_DIR) && $(BUF) lint
	@$(MAKE) --no-print-directory proto-baseline-check
	@cd $(PROTO_DIR) && $(BUF) breaking --against released.binpb
	@echo "protos: lint, baseline and breaking-change checks passed"

# buf breaking compares only files the baseline has, so a file it does not know would ship
# unguarded; a new file joins the baseline deliberately (make proto-release) in the same change.
proto-baseline-check: ## Fail when a proto file exists that protos/released.binpb does not know
	@[ -x $(BUF) ] || { echo "buf is missing: make python-deps installs it"; exit 1; }
	@cd $(PROTO_DIR) && unknown="$$(comm -13 <($(BUF) ls-files released.binpb | sort) <($(BUF) ls-files | sort))"; \
	  if [ -n "$$unknown" ]; then \
	    echo "$(PROTO_DIR)/released.binpb does not know:"; echo "$$unknown" | sed 's/^/  /'; \
	    echo "add them to the released contract after review: make proto-release"; exit 1; \
	  fi

proto-release: python-deps ## Record the current protos as the released contract (after review)
	@cd $(PROTO_DIR) && $(BUF) lint
	@cd $(PROTO_DIR) && $(BUF) breaking --against released.binpb
	@cd $(PROTO_DIR) && $(BUF) build -o released.binpb && echo "$(PROTO_DIR)/released.binpb updated"

lint: python-deps proto ## ruff (lint + format check), mypy --strict, the topic catalog is current
	@$(UV) run --frozen ruff check $(PY_SRC) $(DEPLOY_PY)
	@$(UV) run --frozen ruff format --check $(PY_SRC) $(DEPLOY_PY)
	@$(UV) run --frozen mypy $(MYPY_SRC)
	@$(MAKE) --no-print-directory asyncapi-check

.PHONY: asyncapi asyncapi-check
asyncapi: python-deps proto ## Regenerate docs/asyncapi.yaml from the topic registry and protos
	@$(UV) run --frozen shopstream topics asyncapi

asyncapi-check: python-deps proto ## Fail if docs/asyncapi.yaml is stale
	@$(UV) run --frozen shopstream topics asyncapi --check

format: python-deps ## Format and auto-fix the Python code
	@$(UV) run --frozen ruff format $(PY_SRC) $(DEPLOY_PY)
	@$(UV) run --frozen ruff check --fix $(PY_SRC) $(DEPLOY_PY)

# --- tests ------------------------------------------------------------------------------------

PYTEST := $(UV) run --frozen pytest
TEST_PG_URL := postgresql+asyncpg://postgres@127.0.0.1:5433/postgres
# Integration tests mostly wait (for the broker, consumer groups, timers: ~35% of one core each),
# and each makes its own world (own service names, consumer groups, Faust apps, ids, databases,
# ports), so they run in parallel, in the groups shopstream_platform.testing gives them: a file
# whole on one worker, and every test that runs ads or creator-score on one worker one after
# another (their instances read each other's internal batches). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 4

.PHONY: test test-unit test-deploy test-integration test-e2e test-cluster postgres-up postgres-down
test: setup lint proto-check test-unit test-deploy test-integration test-e2e test-cluster test-security ## Everything CI runs: set-up, checks, unit, deployment, integration, end-to-end, cluster, security tests
	@echo "make test: all passed"

# Inside `make test` the security suite fuzzes 300 requests per RPC (18,000 calls, about a minute);
# `make test-security` alone fuzzes 1,000 per RPC.
test: FUZZ_PER_METHOD = 300
FUZZ_PER_METHOD ?= 1000

test-unit: setup ## Unit tests (no I/O)
	@$(PYTEST) -m "not integration and not cluster and not e2e and not security" $(PY_SRC)

# Offline: kustomize renders the overlays, kubernetes-validate's bundled schemas check the core
# kinds, the Strimzi operator's own API model (io.strimzi:api) checks the Strimzi kinds.
test-deploy: setup deploy-tools ## Images, Kubernetes manifests, compose file: schemas, Strimzi model, settings, hadolint
	@$(PYTEST) deploy/tests

test-integration: setup ## Integration tests against a real Kafka node and PostgreSQL (started and stopped here)
	@status=0; $(MAKE) --no-print-directory kafka-up postgres-up || status=$$?; \
	  if [ $$status = 0 ]; then SHOPSTREAM_TEST_PG_URL=$(TEST_PG_URL) $(PYTEST) -m "integration" \
	    -n $(TEST_WORKERS) --dist loadgroup --durations=30 $(PY_SRC) || status=$$?; fi; \
	  $(MAKE) --no-print-directory kafka-down postgres-down; exit $$status

# A fresh broker (the local one's data is wiped): every service of the day reads its topics from
# the start, and the day is judged against exactly what the simulator sent.
# It also wipes the broker afterwards: a later `make run` starts new consumer groups, which would
# otherwise first wade through the test day's records (campaigns its database does not know).
test-e2e: setup ## The simulated day end to end: fresh Kafka, four service processes, a real Prometheus
	@status=0; $(MAKE) --no-print-directory kafka-wipe kafka-up || status=$$?; \
	  if [ $$status = 0 ]; then $(PYTEST) -m "e2e" $(PY_SRC) || status=$$?; fi; \
	  $(MAKE) --no-print-directory kafka-down kafka-wipe; exit $$status

test-cluster: setup ## Tests that need the 3-node Kafka cluster (started and stopped here)
	@status=0; $(MAKE) --no-print-directory kafka-cluster-up || status=$$?; \
	  if [ $$status = 0 ]; then $(PYTEST) -m "cluster" $(PY_SRC) || status=$$?; fi; \
	  $(MAKE) --no-print-directory kafka-cluster-down; exit $$status

# The long version of the kill -9 tests of the stream workers (make test runs a short one).
.PHONY: stream-faults
stream-faults: setup ## kill -9 of creator-score's and ads' combiners and workers, 10 times each, mid-stream, against an uninterrupted twin; two creator-score processes, one killed
	@status=0; $(MAKE) --no-print-directory kafka-up || status=$$?; \
	  if [ $$status = 0 ]; then SHOPSTREAM_KILLS=10 SHOPSTREAM_WORKER_KILLS=10 SHOPSTREAM_PAUSES=5 $(PYTEST) -s -m integration \
	    services/creator-score/tests/integration/test_worker_recovery.py \
	    services/creator-score/tests/integration/test_two_processes.py || status=$$?; \
	  SHOPSTREAM_KILLS=10 SHOPSTREAM_WORKER_KILLS=10 $(PYTEST) -s -m integration \
	    services/ads/tests/integration/test_worker_recovery.py || status=$$?; fi; exit $$status

# Issue 15 item 3. The tests start what they need (libs/platform/tests/security/conftest.py): a
# plaintext broker for the services whose RPCs are called and a broker in the secure profile
# (kafka.sh secure-start), each on free ports in a temporary directory, stopped and removed at
# the end; the shared broker is not touched.
.PHONY: test-security
test-security: setup ## Auth on every RPC (from the protos), gRPC TLS, Kafka SASL/SCRAM + TLS + ACLs, privacy of the protos (brokers of its own)
	@SHOPSTREAM_FUZZ_PER_METHOD=$(FUZZ_PER_METHOD) $(PYTEST) -m security --durations=15 libs/platform/tests/security

# Issue 15 item 2: broker and process faults under load (tests/faults). The suite starts what it
# needs itself (tests/faults/conftest.py): a 3-node cluster with kafka.sh in a temporary run
# directory on free ports, and the four services as processes on it; both are stopped at the end,
# the shared broker is not touched. Alone it runs the full volume (>= 100,000 events, 5 leader
# kills); FAULTS_FULL=0 is the short version. tests/ is outside PY_SRC, so it is linted here.
.PHONY: test-faults
FAULTS_FULL ?= 1
test-faults: setup ## Broker and process faults under load on a 3-node cluster of its own; prints what was injected and the lost/duplicated/mismatched counts
	@$(UV) run --frozen ruff check tests/faults
	@$(UV) run --frozen ruff format --check tests/faults
	@SHOPSTREAM_FAULTS_FULL=$(FAULTS_FULL) $(PYTEST) -s -m faults --durations=10 tests/faults

postgres-up: system-deps ## Start the local PostgreSQL on 127.0.0.1:5433
	@bash deploy/postgres/postgres.sh start

postgres-down: ## Stop the local PostgreSQL
	@bash deploy/postgres/postgres.sh stop

# --- benchmarks -------------------------------------------------------------------------------

.PHONY: bench bench-quick
# Every bench runs on a Kafka broker of its own (bench/_broker.py: free ports, a temporary
# directory, removed afterwards), so the local stack's topics and consumer groups stay as they were.
bench: setup ## Measure the design targets on a broker of the bench's own; results in bench/results, the table in BENCHMARKS.md
	@$(UV) run --frozen python bench/run_all.py
	@$(UV) run --frozen python bench/report.py

bench-quick: setup ## Smoke run of every bench at tiny sizes (under 2 minutes); the report goes to a temporary directory
	@tmp=$$(mktemp -d -t shopstream-bench-quick-XXXXXX); \
	  $(UV) run --frozen python bench/run_all.py --quick --results-dir $$tmp && \
	  $(UV) run --frozen python bench/report.py --results $$tmp --out $$tmp/BENCHMARKS.md

# --- running ----------------------------------------------------------------------------------

.PHONY: run stop clean
# make run DURATION=60 RATE=3 SEED=7 KEEP=1 (all optional); SIM_ARGS passes any other option.
SIM_OPTS = $(if $(DURATION),--duration $(DURATION)) $(if $(RATE),--rate $(RATE)) $(if $(SEED),--seed $(SEED)) $(SIM_ARGS)
run: setup kafka-up ## Set up, start Kafka, the four services (and Prometheus if installed), play a simulated day with a live view
	@UV=$(UV) KEEP=$(KEEP) bash deploy/run.sh $(SIM_OPTS)

.PHONY: prometheus-up prometheus-down
prometheus-up: ## Start the local Prometheus on 127.0.0.1:9090 (Debian package binary)
	@bash deploy/prometheus/prometheus.sh start

prometheus-down: ## Stop the local Prometheus
	@bash deploy/prometheus/prometheus.sh stop

# The services first (their supervisors, the services, their combiners), while Kafka is still up
# for their graceful shutdown; no virtualenv means nothing of ours can be running.
stop: ## Stop everything `make run` or the tests started: services, Kafka, PostgreSQL, Prometheus
	@if [ -x .venv/bin/python ]; then $(UV) run --frozen --no-sync shopstream down --keep-kafka \
	  || echo "shopstream down failed: stopping Kafka, PostgreSQL and Prometheus all the same"; fi
	@$(MAKE) --no-print-directory kafka-down postgres-down prometheus-down

clean: stop ## Remove local state (.run, the PostgreSQL data) and generated code
	bash deploy/postgres/postgres.sh wipe
	rm -rf $(RUN_DIR) libs/protos/src/shopstream .venv
