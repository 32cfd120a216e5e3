# syntax=docker/dockerfile:1
# The one fulfillment binary (api, worker, migrate, seed) on a slim, non-root runtime.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/fulfillment ./cmd/fulfillment

# Debian slim rather than distroless: curl serves the compose health check on
# /readyz, ca-certificates the HTTPS calls to publishers' webhooks.
FROM debian:trixie-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin fulfillment
COPY --from=build /out/fulfillment /fulfillment
USER 10001:10001
ENV HTTP_ADDR=:8080
EXPOSE 8080
ENTRYPOINT ["/fulfillment"]
CMD ["api"]
