# modelplane: one static binary; `server` (API) and `worker` run from the same
# image. Build with BuildKit (the default builder since Docker 23):
#   docker build -t modelplane:dev .

# Matches go.mod's go directive: the toolchain is never downloaded (GOTOOLCHAIN=local).
ARG GO_VERSION=1.26.8

# The builder runs on the build host's platform and cross-compiles, so
# multi-arch images need no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ENV GOTOOLCHAIN=local CGO_ENABLED=0
WORKDIR /src

# Dependencies first: this layer is reused until go.mod or go.sum changes,
# and the module cache mount survives even when it is not.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=bind,source=go.mod,target=go.mod \
    --mount=type=bind,source=go.sum,target=go.sum \
    go mod download -x

# Sources are bind-mounted rather than copied: nothing but the binary ends up
# in a layer, and the build cache mount keeps incremental rebuilds fast.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,target=. \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w" -o /out/modelplane ./cmd/modelplane

# distroless/static: CA certificates, tzdata and /etc/passwd (nonroot =
# 65532), no shell or package manager. The binary needs no libc (CGO off).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/modelplane /modelplane
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# 8080: API (/healthz, /readyz, /metrics). 9090: the worker's /metrics and /healthz.
EXPOSE 8080 9090
ENTRYPOINT ["/modelplane"]
CMD ["server", "--addr", "0.0.0.0:8080"]
