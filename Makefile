# The two commands a new machine needs: `make run` and `make test`.
GO ?= go
INFLUXD_VERSION := v1.8.10
HELM_VERSION := v3.16.4
TELEGRAF_VERSION := v1.37.2
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build run test test-short bench influxdb-start influxdb-stop fmt vet clean release

all: build bin/influxd

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/proactive ./cmd/proactive

# Release archives for linux/amd64 and linux/arm64 with SHA256SUMS, in
# dist/ (scripts/release.sh; ARCHES, DIST and VERSION override).
release:
	VERSION=$(VERSION) GO=$(GO) scripts/release.sh

# InfluxDB OSS 1.8 built from the Go module proxy: no download of release
# archives, so it works wherever Go modules do.
bin/influxd:
	GOBIN=$(CURDIR)/bin GOFLAGS=-mod=mod $(GO) install github.com/influxdata/influxdb/cmd/influxd@$(INFLUXD_VERSION)

# helm for the chart's lint and template test (deploy/helm), built from the
# Go module proxy like bin/influxd.
bin/helm:
	GOBIN=$(CURDIR)/bin GOFLAGS=-mod=mod $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# Telegraf with only the plugins BenchmarkIngest/mosquitto/telegraf uses
# (the MQTT consumer, JSON v2 and the InfluxDB v2 output), built from the Go
# module proxy: `make bench` compares our ingest with it in the same run.
bin/telegraf:
	GOBIN=$(CURDIR)/bin GOFLAGS=-mod=mod $(GO) install -tags "custom,inputs.mqtt_consumer,outputs.influxdb_v2,parsers.json_v2" github.com/influxdata/telegraf/cmd/telegraf@$(TELEGRAF_VERSION)

influxdb-start: bin/influxd
	scripts/influxdb.sh start

influxdb-stop:
	scripts/influxdb.sh stop

# The platform with the embedded broker and a local InfluxDB.
run: build bin/influxd
	scripts/run.sh

# gotestsum runs go test and ends with a summary: each skipped test and
# why (a missing service, -short), then the failures. Fetched and built by
# `go run` from the Go module proxy the first time, like bin/influxd.
GOTESTSUM := $(GO) run gotest.tools/gotestsum@v1.13.0 --format pkgname-and-test-fails --format-hide-empty-pkg --

# Every test. Integration tests start their own influxd and brokers; they
# need bin/influxd, Mosquitto on 127.0.0.1:1883, PostgreSQL on
# 127.0.0.1:5432 and Chromium; the packaging tests bin/helm and
# systemd-analyze (skipped without them, failed under CI=true); .ci/run
# installs and starts them.
test: bin/influxd
	$(GO) vet ./...
	$(GOTESTSUM) -count=1 -timeout 20m ./...

test-short:
	$(GOTESTSUM) -count=1 -short ./...

# The figures the issues ask for: end-to-end ingest throughput (a burst of
# 100,000 QoS 1 messages through a private Mosquitto and through the embedded
# broker into a throwaway influxd, against each broker's delivery rate to a
# discarding subscriber; needs the mosquitto binary), a fleet's ingest rate
# while one device floods, rule evaluations per second, window memory,
# start-up rebuild of 10,000 devices from InfluxDB and from a snapshot (the
# raw replay for comparison: -bench BenchmarkRebuild/replay, ~12 min),
# snapshot size and speed, ticket opens per second and API ticket-list
# latency on SQLite and PostgreSQL, alert → SMS latency and outbox throughput,
# and the simulator's publish rate and CPU. Takes about half an hour.
bench: bin/influxd bin/telegraf
	BENCH_TELEGRAF=$(CURDIR)/bin/telegraf $(GO) test -count=1 -run '^$$' -bench BenchmarkIngest -benchtime 1x -timeout 30m ./cmd/proactive/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkEventIngest|BenchmarkTelemetryIngest' -benchmem ./ingest/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkIngestWhileAnotherFloods' -benchtime 10000x ./ingest/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkWrite' -benchmem ./influx/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkRuleEvaluations' -benchtime 1000000x -timeout 30m ./rules/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkFleetMemory|BenchmarkModelBaselineMemory|BenchmarkEventLogMemory' -benchtime 1x -timeout 30m ./rules/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkWindow' -benchmem ./rules/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkRebuild/(snapshot|aggregated)' -benchtime 1x -timeout 60m ./rules/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkSnapshot' -benchtime 1x -timeout 30m ./rules/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkKafkaIngest' -benchtime 200000x -timeout 10m ./ingest/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkPartitionRestore' -benchtime 1x -timeout 30m ./rules/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkOpenTicket|BenchmarkCheckDeviceSecret' -benchtime 2s ./devices/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkDeviceDirectory' -timeout 10m ./devices/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkAlertToSMS' -benchtime 1x -timeout 20m ./notify/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkSimulatorPublish' -benchtime 1000000x -timeout 10m ./simulator/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkSimulatorCPU' -benchtime 1x -timeout 10m ./simulator/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkTicketList' -benchtime 2000x -timeout 10m ./api/

fmt:
	gofmt -l -w .

vet:
	$(GO) vet ./...

clean:
	rm -rf bin/proactive dist

# The ticket page's chart library (uPlot), from npm at the version pinned in
# web/assets/package-lock.json, copied into web/static. The copies are
# checked in, so a fresh clone builds without npm; run this after changing
# the pin.
.PHONY: web-assets
web-assets:
	cd web/assets && npm ci --no-audit --no-fund
	cp web/assets/node_modules/uplot/dist/uPlot.iife.min.js web/static/uplot.min.js
	cp web/assets/node_modules/uplot/dist/uPlot.min.css web/static/uplot.min.css
	cp web/assets/node_modules/uplot/LICENSE web/static/uplot.LICENSE
