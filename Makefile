# Vireo: build, boot the default guest, test, benchmark.
# Every target works on a fresh Debian 12 machine with /dev/kvm and Go;
# `make deps` installs the Debian packages the project needs (as root, or with sudo).

GO       ?= go
BIN      := bin/vireo
SHARED   ?= $(wildcard ../shared/guest)
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PKGS     := busybox-static e2fsprogs cpio qemu-system-x86 build-essential qemu-utils iproute2
GUEST    := $(or $(VIREO_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/vireo)/guest/vmlinux

.PHONY: all build run deps guest test unit e2e fuzz bench vet clean

all: build

# A static binary: no libc mapped into every VMM process.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/vireo

# Debian packages: busybox-static (the default guest's initramfs), e2fsprogs
# and cpio (tests), qemu-system-x86 (side-by-side benchmarks).
deps:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "==> installing$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(GO) mod download

# The guest kernel: copied from a prebuilt directory when one is beside the
# repository (../shared/guest), else built from Debian's linux-source-6.1.
guest:
	guest/build-kernel.sh $(if $(SHARED),--from-shared $(SHARED))

# Boot the default guest to a shell on this terminal (Ctrl-A x quits).
run: deps guest build
	$(BIN) run

vet:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...

# Unit tests with the race detector, then the end-to-end tests that boot
# real guests (they need /dev/kvm; under CI=true they fail instead of skipping).
unit:
	$(GO) test -race -timeout 15m . ./internal/... ./cmd/... ./bench/...

e2e:
	$(GO) test -timeout 60m ./tests/...

test: deps guest vet unit e2e

# Short runs of every fuzz target (the seed corpora also run in `make unit`).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./internal/...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "==> $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Side-by-side benchmarks with QEMU; results go to BENCHMARKS.md.
bench: deps guest build
	$(GO) run ./bench -vireo $(BIN) -out BENCHMARKS.md

clean:
	rm -rf bin

# virtio-vsock throughput and latency (bench/vsock); rewrites its section of BENCHMARKS.md.
bench-vsock: deps guest build
	$(GO) run ./bench/vsock -vireo $(BIN) -out BENCHMARKS.md

# virtio-blk throughput and CPU cost beside QEMU (bench/blk); rewrites its section of BENCHMARKS.md.
bench-blk: deps guest build
	$(GO) run ./bench/blk -vireo $(BIN) -out BENCHMARKS.md

# QMP latency beside QEMU and Firecracker-API start (bench/control); rewrites its section of BENCHMARKS.md.
bench-control: deps guest build
	$(GO) run ./bench/control -vireo $(BIN) -out BENCHMARKS.md
