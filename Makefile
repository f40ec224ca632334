# The targets a developer needs; `make test` is what CI runs.
GO ?= go

.PHONY: test vet build serve bench-engine test-thirdparty

test: vet
	$(GO) test -race -timeout 40m ./...
	$(MAKE) test-thirdparty

vet:
	$(GO) vet ./...

# Consumer libraries written by others, against a real server. Their module
# is nested (integration/thirdparty/go.mod), so ./... above does not reach it.
test-thirdparty:
	cd integration/thirdparty && $(GO) vet ./... && $(GO) test -race -timeout 10m ./...

build:
	$(GO) build -o bin/runnel ./cmd/runnel

serve:
	$(GO) run ./cmd/runnel serve
