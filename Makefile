# Build, test, demo and benchmark the X-Road load-balancer toolkit.
GO      ?= go
BIN     := bin
PKGS    := ./...
# staticcheck at a fixed version, built from the Go module proxy on first use.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build deps test test-short demo bench lint fmt clean deb

all: build

deps:
	./scripts/install-deps.sh

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/ ./cmd/...

# The whole suite against real PostgreSQL, HAProxy, nginx and sshd (installed by deps),
# after the lint.
test: deps lint
	$(GO) test -count=1 -timeout 20m $(PKGS)

# Unit tests only (no external programs needed).
test-short:
	$(GO) test -short -count=1 $(PKGS)

# dist/lbkit_<version>-1_amd64.deb and _arm64.deb (deploy/mkdeb: nfpm as a library).
deb:
	$(GO) run ./deploy/mkdeb -version $(VERSION) -arch amd64 -out dist
	$(GO) run ./deploy/mkdeb -version $(VERSION) -arch arm64 -out dist

demo: deps build
	$(GO) run ./testenv/cmd/demo

bench: deps build
	./scripts/bench.sh

# go.mod tidy, gofmt, go vet and staticcheck; part of make test (and so of CI).
lint:
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) dist
