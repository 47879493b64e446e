# syntax=docker/dockerfile:1
# The production image: one static binary (CGO off: the SQLite driver,
# modernc.org/sqlite, is pure Go) on distroless/static, running as the
# non-root user 65532. No shell, no package manager: the health check is the
# binary itself (`proactive healthcheck`).
#
#   docker build -t proactive \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) .

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# timetzdata embeds the time zone database: quiet hours and visit slots are
# in each device's zone, whatever the base image carries.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -tags timetzdata -ldflags "-s -w -X main.version=${VERSION}" -o /out/usr/local/bin/proactive ./cmd/proactive
# The directories named volumes are mounted on, owned by the runtime user,
# so that a fresh volume is writable by it; and the example rules.
RUN mkdir -p /out/var/lib/proactive /out/var/lib/proactive-acl /out/etc/proactive/rules \
    && cp rules/examples/*.yaml /out/etc/proactive/rules/

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
# OCI image annotations (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
LABEL org.opencontainers.image.title="proactive" \
      org.opencontainers.image.description="IoT telemetry ingest, predictive rules and proactive customer support by SMS" \
      org.opencontainers.image.source="https://github.com/proactivehq/proactive" \
      org.opencontainers.image.url="https://github.com/proactivehq/proactive" \
      org.opencontainers.image.documentation="https://github.com/proactivehq/proactive#readme" \
      org.opencontainers.image.vendor="proactivehq" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=build /out/usr/local/bin/proactive /usr/local/bin/proactive
COPY --from=build /out/etc/proactive /etc/proactive
COPY --from=build --chown=65532:65532 /out/var/lib/proactive /var/lib/proactive
COPY --from=build --chown=65532:65532 /out/var/lib/proactive-acl /var/lib/proactive-acl
USER 65532:65532
WORKDIR /var/lib/proactive
ENV PROACTIVE_DB=/var/lib/proactive/proactive.db \
    PROACTIVE_HTTP_ADDR=:8080 \
    PROACTIVE_RULES=/etc/proactive/rules/*.yaml \
    PROACTIVE_LOG_FORMAT=json
EXPOSE 8080 1883
VOLUME ["/var/lib/proactive"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/proactive", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/proactive"]
CMD ["serve"]
