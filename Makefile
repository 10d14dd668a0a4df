# Gata Contributor. `make run` and `make test` set up everything they need on a fresh
# Debian 12 machine (apt packages, Go modules, npm packages) and then run.

SHELL   := /bin/bash
GO      ?= go
BIN     := bin/gata
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
LDFLAGS := -ldflags='-extldflags=-Wl,-z,noexecstack'
export GOFLAGS ?= -buildvcs=false
# The checksum database lacks one of the Greenfield tree's dependencies; go.sum has them.
export GONOSUMDB ?= github.com/bnb-chain

# Fyne (cgo + OpenGL/X11 headers), g++ for the CUDA kernel emulator that tests dva/cuda
# without a GPU, Xvfb and ImageMagick for the window test, Chromium and
# Node for the browser test (node and npm from apt only when neither is on the PATH: a
# NodeSource nodejs already carries npm and conflicts with Debian's npm package).
APT_PKGS := gcc g++ pkg-config libgl1-mesa-dev libxcursor-dev libxrandr-dev libxinerama-dev \
            libxi-dev libxxf86vm-dev libxkbcommon-dev libwayland-dev xvfb x11-utils \
            imagemagick chromium ca-certificates git mariadb-server dbus-daemon
# Only for `make bench-dva` and `make bench-pipeline`: the PyTorch reference, with OpenBLAS
# (without it Debian's torch falls back to the reference BLAS and runs several times slower).
BENCH_APT_PKGS := python3 python3-torch python3-numpy python3-pil python3-regex libopenblas0-pthread

# Packages that run goroutines against each other: tested with the race detector.
RACE_PKGS := ./app/... ./storage/... ./dva/... ./agent/... ./chat/...
# Tested without it: the rest, and dva/tensor again for the GEMM shapes too slow under -race.
UNIT_PKGS := . ./assets/... ./kernels/... ./dva/tensor/...

E2E_DIR   := app/web/e2e
ARTIFACTS ?= $(CURDIR)/.ci/artifacts

.PHONY: all run test build deps apt go-deps npm-deps check-go fmt vet unit race e2e e2e-web e2e-gui e2e-greenfield bench-dva bench-pipeline bench-chat bench-pool clean

all: build

## run: build and start the app (the window when a display is present, else `gata serve`)
run: deps build
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then exec ./$(BIN); else exec ./$(BIN) serve; fi

## test: formatting, vet, unit tests (race detector where there is concurrency), end-to-end tests
test: deps fmt vet race unit e2e
	@echo "make test: all passed"

build: check-go
	@mkdir -p bin
	$(GO) build $(LDFLAGS) -o $(BIN) .

deps: apt go-deps npm-deps

check-go:
	@command -v $(GO) >/dev/null || { echo "Go 1.26 or newer is required (https://go.dev/dl/)"; exit 1; }
	@$(GO) version | awk '{split($$3,v,"."); sub("go","",v[1]); if (v[1]<1 || (v[1]==1 && v[2]<26)) {print "Go 1.26 or newer is required, found " $$3; exit 1}}'

apt:
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

go-deps: check-go
	@$(GO) mod download

npm-deps: apt
	@if [ ! -d $(E2E_DIR)/node_modules ] || [ $(E2E_DIR)/package-lock.json -nt $(E2E_DIR)/node_modules ]; then \
	  cd $(E2E_DIR) && npm ci --no-audit --no-fund --loglevel=error >/dev/null && touch node_modules; \
	fi

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The wallet and submission tests check against the npm package ethers (installed by
# npm-deps); GATA_REQUIRE_ETHERS makes them fail, not skip, when it is missing.
race: npm-deps
	GATA_REQUIRE_ETHERS=1 $(GO) test $(LDFLAGS) -race -count=1 $(RACE_PKGS)

unit: npm-deps
	GATA_REQUIRE_ETHERS=1 $(GO) test $(LDFLAGS) -count=1 $(UNIT_PKGS)

e2e: e2e-gui e2e-web e2e-greenfield

e2e-gui: build
	@mkdir -p $(ARTIFACTS)
	GATA_BIN=$(CURDIR)/$(BIN) GATA_ARTIFACTS=$(ARTIFACTS) $(GO) test -count=1 -tags e2e ./app/gui/ ./app/

## e2e-greenfield: a real local Greenfield network (gnfd + 3 gnfd-sp + MariaDB on 127.0.0.1):
# builds the two binaries once into ~/.cache/gata-localnet (cold: ~16 min, cached: instant),
# then uploads, kills gata serve mid-upload, resumes, reads back and shares (one network at a
# time: -p 1, two at once on 2 cores slow the providers' seals)
e2e-greenfield: build apt
	@set -o pipefail; bins=$$(bash storage/greenfield/localnet/tools/build.sh | tail -n 1) && \
	GATA_BIN=$(CURDIR)/$(BIN) GATA_LOCALNET_BIN=$$bins $(GO) test $(LDFLAGS) -p 1 -count=1 -timeout 40m -tags e2e,greenfield \
	  -run '^(TestGreenfieldEndToEnd|TestStart)$$' ./app/ ./storage/greenfield/localnet/

e2e-web: build npm-deps
	@mkdir -p $(ARTIFACTS)
	cd $(E2E_DIR) && GATA_BIN=$(CURDIR)/$(BIN) GATA_ARTIFACTS=$(ARTIFACTS) node --test

## bench-dva: the CLIP engine vs the PyTorch reference on the full-size ViT-B-16 (random weights)
bench-dva: build
	@missing=$$(for p in $(BENCH_APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
	bash dva/cpu/bench.sh

## bench-chat: what the app adds per token between a provider's stream and the UI event (4 streams at 200 tokens/s)
bench-chat: check-go
	$(GO) test -run '^$$' -bench ChatTokenOverhead -benchtime 1x -count 5 ./app/core

## bench-pool: 500 simulated workers (real NATS clients) against one pool in its own process:
# jobs/s, p50/p99 job latency, the pool's peak RSS
bench-pool: check-go
	$(GO) test -run '^$$' -bench Pool500Workers -benchtime 1x ./agent/pool

## bench-pipeline: batch runs: decode vs PIL, the whole pipeline on the tiny and the full-size model
# (needs Go, not the app binary)
bench-pipeline: check-go
	@missing=$$(for p in $(BENCH_APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
	bash dva/pipeline/bench.sh

clean:
	rm -rf bin $(ARTIFACTS)
