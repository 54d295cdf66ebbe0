# Builds the auditstore server. docker-compose.yml runs it against a pinned
# clickhouse/clickhouse-server; inside a container the embedded engine is not
# used (AUDITSTORE_CLICKHOUSE points at the server).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/auditstore ./cmd/auditstore \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/auditstore /usr/local/bin/auditstore
COPY --from=build --chown=65532:65532 /out/data /data
ENV AUDITSTORE_LISTEN=0.0.0.0:8080 \
    AUDITSTORE_DATA=/data
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/auditstore"]
CMD ["serve"]
