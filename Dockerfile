# Builds the chatrabridge binary; the same image runs `api`, `worker`, `serve` or `migrate`.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags nodev: the production binary, without the dev stack (embedded Temporal server, Web UI,
# sandbox, demo); see README, "Production build".
RUN CGO_ENABLED=0 go build -tags nodev -trimpath -ldflags="-s -w" -o /out/chatrabridge ./cmd/chatrabridge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chatrabridge /usr/local/bin/chatrabridge
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/chatrabridge"]
CMD ["serve"]
