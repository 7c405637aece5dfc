# syntax=docker/dockerfile:1
#
# The sluice image: one static binary, CA certificates and a non-root user,
# on no base image. Build from the repository root:
#
#   docker build -t sluice .
#
# See docs/deploy.md. deploy/deploy_test.go checks this file: the build
# command below must produce a static binary, and what it names must exist.

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: they are cached as long as go.mod and go.sum stay the same.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: the SQLite driver is pure Go, so the binary needs no libc
# and runs on an empty image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/sluice ./cmd/sluice
# The final image has no shell: its user, group and data directory are
# made here. 65532 is the usual "nonroot" id of distroless images.
RUN mkdir -p /out/root/etc /out/root/data \
 && echo 'sluice:x:65532:65532:sluice:/data:/sbin/nologin' > /out/root/etc/passwd \
 && echo 'sluice:x:65532:' > /out/root/etc/group \
 && chown 65532:65532 /out/root/data && chmod 0700 /out/root/data

FROM scratch
# For TLS to an external NATS server, PostgreSQL or a breaker webhook.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/root/ /
COPY --from=build /out/sluice /sluice
USER 65532:65532
WORKDIR /data
# The data directory: the embedded engine's store, the SQLite documents
# (without --docstore) and, by default, the admin key file.
VOLUME ["/data"]
# Beyond loopback the HTTP API needs an API key: the admin key file is
# created in the data directory on the first start unless one is given.
ENV SLUICE_DATA_DIR=/data \
    SLUICE_HTTP=0.0.0.0:7070 \
    SLUICE_ADMIN_KEY_FILE=/data/admin.key
EXPOSE 7070
# The image has no curl: the binary asks its own /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/sluice", "health"]
ENTRYPOINT ["/sluice"]
CMD ["serve"]
