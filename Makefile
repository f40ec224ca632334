# The targets a developer needs; `make test` is what CI runs.
GO ?= go

.PHONY: test vet build serve bench-engine

test: vet
	$(GO) test -race -timeout 40m ./...

vet:
	$(GO) vet ./...

build:
	$(GO) build -o bin/runnel ./cmd/runnel

serve:
	$(GO) run ./cmd/runnel serve
