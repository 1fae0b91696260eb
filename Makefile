# modelplane — two commands on a fresh machine: `make run` and `make test`.
GO      ?= go
BIN     := bin/modelplane
PKGS    := ./...

.PHONY: all build run test test-integration bench release vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/modelplane

## run: build and start everything in one process (Temporal, Web UI, worker, API, simulator)
run: build
	./$(BIN) dev

## test: every unit and integration test, with the race detector, against real parts
##   (the official MCP registry is built from the module proxy once, ≈ 1–3 min, and cached)
test: vet
	@hack/ensure-monitoring.sh
	@hack/ensure-mcp-registry.sh >/dev/null
	@dsn=$$(hack/ensure-postgres.sh) && nats=$$(hack/ensure-nats.sh) && \
	MODELPLANE_TEST_POSTGRES_DSN="$$dsn" MODELPLANE_TEST_NATS_URL="$$nats" MODELPLANE_REQUIRE_MCP_REGISTRY=1 \
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

## test-integration: suites needing heavy real parts, built or installed on first use:
##   KServe on a real kube-apiserver + etcd (built from the module proxy, cached),
##   and the Temporal Web UI sign-off driven in headless Chromium.
test-integration: build
	@hack/ensure-kube.sh >/dev/null
	@hack/ensure-monitoring.sh
	MODELPLANE_REQUIRE_KUBE=1 $(GO) test -race -count=1 -timeout 20m ./internal/kubetest/... ./providers/...
	hack/ensure-browser.sh
	$(GO) test -tags e2e -count=1 -timeout 10m -run TestWebUI ./e2e/...

## bench: drift → rollback latency against a bare Temporal baseline (same server, same run)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 30x -timeout 20m ./bench/...

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (gofmt -l . ; echo "gofmt needed"; exit 1)

## release: static binary, stripped
release:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN) ./cmd/modelplane

clean:
	rm -rf bin .modelplane
