# The targets a developer needs; `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: test setup vet build serve test-thirdparty test-cluster

# test installs what the tests need (setup), vets, and runs every test with
# the race detector, then the third-party consumer libraries' tests. Its
# output is go test's, followed by the skipped tests and why they skipped.
test: setup vet
	$(GO) run ./internal/cmd/testsummary $(GO) test -json -race -timeout 40m ./...
	$(MAKE) test-cluster
	$(MAKE) test-thirdparty

# The engine conformance suite on a 3-node NATS JetStream cluster, without
# the race detector (under it, three NATS servers in one process are too
# slow for the suite's time limits; the single-node suite runs with it).
# Then the integration tests of the data plane, resharding, enhanced fan-out
# and the AWS CLI against a server on an embedded 3-node cluster.
test-cluster:
	$(GO) test -count=1 -timeout 10m -run 'TestConformanceCluster|TestAppendThroughLeaderChanges' ./internal/engine/jetstream/
	RUNNEL_TEST_ENGINE=cluster $(GO) test -count=1 -timeout 15m -run '$(CLUSTER_TESTS)' ./integration/

CLUSTER_TESTS = TestPutAndGetRecords|TestShardIteratorTypes|TestListShardsFilters|TestAWSCLIRoundTrip|TestFanout|TestReshard|TestAtTrimHorizonAfterSplitAndMerge|TestConsumerWorkers$$|TestDurabilityKill9|TestStreamLifecycle

# setup installs, when missing, what three integration tests need beyond Go
# modules: the AWS CLI v2, the AWS SDK for JavaScript v3 and aws-kinesis-agg.
# Where it cannot, it says why (and fails when CI is set).
setup:
	@.ci/setup

vet:
	$(GO) vet ./...

# Consumer libraries written by others, against a real server. Their module
# is nested (integration/thirdparty/go.mod), so ./... above does not reach it.
test-thirdparty:
	$(GO) -C integration/thirdparty vet ./...
	$(GO) run ./internal/cmd/testsummary $(GO) -C integration/thirdparty test -json -race -timeout 10m ./...

build:
	$(GO) build -o bin/runnel ./cmd/runnel

# serve runs the built binary rather than `go run`, so that a signal sent to
# the server reaches the server.
serve: build
	bin/runnel serve
