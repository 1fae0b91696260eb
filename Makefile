# modelplane — two commands on a fresh machine: `make run` and `make test`.
GO      ?= go
BIN     := bin/modelplane
PKGS    := ./...

.PHONY: all build run test test-integration test-reliability fuzz bench release vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/modelplane

## run: build and start everything in one process (Temporal, Web UI, worker, API, simulator)
run: build
	./$(BIN) dev

## test: every unit and integration test, with the race detector, against real parts
##   (the official MCP registry is built from the module proxy once, ≈ 1–3 min, and cached)
##   (helm, the compose-spec schema and the ServiceMonitor CRD for the deploy checks are
##   fetched from the Go module proxy once, ≈ a few CPU-minutes, and cached)
##   (the KServe suites need a kube-apiserver built once, ≈ 9 min: under CI (CI set)
##   make test builds it and fails rather than skip them; elsewhere it says what it skipped)
test: vet
	@hack/ensure-monitoring.sh
	@hack/ensure-mcp-registry.sh >/dev/null
	@if [ -n "$$CI" ]; then hack/ensure-kube.sh >/dev/null; fi
	@tools=$$(hack/ensure-deploy-tools.sh) && dsn=$$(hack/ensure-postgres.sh) && nats=$$(hack/ensure-nats.sh) && \
	MODELPLANE_DEPLOY_TOOLS="$$tools" MODELPLANE_REQUIRE_DEPLOY_TOOLS=1 MODELPLANE_REQUIRE_KUBE=$${CI:+1} \
	MODELPLANE_TEST_POSTGRES_DSN="$$dsn" MODELPLANE_TEST_NATS_URL="$$nats" MODELPLANE_REQUIRE_MCP_REGISTRY=1 \
	$(GO) test -race -count=1 -timeout 40m $(PKGS)
	@ls $${MODELPLANE_KUBE_ASSETS:-$${XDG_CACHE_HOME:-$$HOME/.cache}/modelplane/kube/*}/kube-apiserver >/dev/null 2>&1 || \
	  echo "SKIPPED: the KServe suites (providers/kserve, providers *KServe*, internal/kubetest): no kube-apiserver yet; run hack/ensure-kube.sh or make test-integration"

## test-reliability: kill -9 the worker at every stage boundary, restart dev mid-rollout,
##   30% injected provider faults, thousands of concurrent promotions, and time-bounded fuzzing
test-reliability: build
	@dsn=$$(hack/ensure-postgres.sh) && \
	MODELPLANE_TEST_POSTGRES_DSN="$$dsn" $(GO) test -race -count=1 -timeout 40m -tags reliability -v ./reliability/...
	$(MAKE) fuzz

FUZZTIME ?= 20s
## fuzz: each fuzz target for FUZZTIME (API request decoding, strategy and analysis specs)
fuzz:
	@for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' api/*_test.go | sed 's/func //'); do \
	  echo "fuzz api $$t"; GO=$(GO) hack/fuzz.sh ./api $$t $(FUZZTIME) || exit 1; done
	@for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' *_test.go 2>/dev/null | sed 's/func //'); do \
	  echo "fuzz root $$t"; GO=$(GO) hack/fuzz.sh . $$t $(FUZZTIME) || exit 1; done

## test-integration: suites needing heavy real parts, built or installed on first use:
##   KServe on a real kube-apiserver + etcd (built from the module proxy, cached),
##   and the Temporal Web UI sign-off and the console walk-through (axe-core
##   accessibility checks, screenshots) driven in headless Chromium, and the
##   official MCP TypeScript SDK calling tools through the gateway of modelplane dev.
E2E_SHOTS ?= $(CURDIR)/e2e/shots
test-integration: build
	@hack/ensure-kube.sh >/dev/null
	@hack/ensure-monitoring.sh
	@hack/ensure-deploy-tools.sh >/dev/null
	MODELPLANE_REQUIRE_KUBE=1 $(GO) test -race -count=1 -timeout 20m ./internal/kubetest/... ./providers/...
	MODELPLANE_REQUIRE_KUBE=1 MODELPLANE_REQUIRE_DEPLOY_TOOLS=1 $(GO) test -count=1 -run TestHelmServerDryRun ./deploy/
	hack/ensure-browser.sh
	@mkdir -p $(E2E_SHOTS)
	MODELPLANE_E2E_SHOTS=$(E2E_SHOTS) $(GO) test -tags e2e -count=1 -timeout 20m -run 'TestWebUI|TestConsole|TestMCPGateway' ./e2e/...
	@echo "screenshots of every page: $(E2E_SHOTS)"

## bench: every figure as a ratio against a baseline measured in the same run (see bench/README.md)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/...
	$(GO) test -run '^$$' -bench 'Decide' -benchtime 2000x ./policy/
	$(GO) test -run '^$$' -bench 'Governance' -benchtime 2000x ./api/
	$(GO) test -run '^$$' -bench 'FrontendAuth' -benchmem ./temporalserver/
	hack/ensure-browser.sh
	$(GO) test -tags e2e -run '^$$' -bench 'WebUISignOff' -benchtime 1x -timeout 15m ./e2e/

# Vet with every build tag the suites use, so a tagged suite that no longer
# compiles fails make test instead of the integration run.
VET_TAGS := e2e reliability record_histories
vet:
	$(GO) vet -tags '$(VET_TAGS)' $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (gofmt -l . ; echo "gofmt needed"; exit 1)

## release: static binary, stripped
release:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN) ./cmd/modelplane

clean:
	rm -rf bin .modelplane
