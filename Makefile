# hotdesk — build, test, lint, package.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
export CGO_ENABLED ?= 0

DEB_VERSION ?= $(shell packaging/version.sh)
DEB_ARCH    ?= $(shell dpkg --print-architecture 2>/dev/null || $(GO) env GOARCH)

.PHONY: build test test-deps test-packaging lint deb clean fuzz bench

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/hotdeskd ./cmd/hotdeskd

# test installs what the tests need (Debian packages) when missing, then
# runs vet and the race-enabled test suite. -race needs cgo.
test: test-deps
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -timeout 20m ./...
	$(MAKE) test-packaging

# The mail tests send to a real SMTP server: mailpit, a Go module, built
# once per version (prov/mail/mailpittest.Version) into bin/test.
MAILPIT_VERSION := v1.33.1
export MAILPIT_BIN ?= $(CURDIR)/bin/test/mailpit-$(MAILPIT_VERSION)/mailpit

test-deps:
	.ci/install-deps.sh
	test -x $(MAILPIT_BIN) || GOBIN=$(dir $(MAILPIT_BIN)) GOFLAGS= CGO_ENABLED=0 $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

# fuzz runs every Fuzz function of the module one after another for
# FUZZTIME each (default 10m; make fuzz FUZZTIME=30s for a quick pass) and
# fails when one finds an input that breaks it.
FUZZTIME ?= 10m
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) .ci/fuzz.sh

# bench runs the side-by-side benchmarks (TFTP vs dnsmasq, HTTP vs nginx,
# REGISTER and calls vs Kamailio, DHCP vs Kea/dnsmasq) one after another and
# prints one summary table; a peer that is not installed is skipped with a
# line naming its package. Minutes long, as root; not part of make test.
bench:
	cmd/hotdesk-load/bench/bench_all.sh $(BENCH)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# deb builds dist/hotdesk_<version>_<arch>.deb with nfpm at a pinned version.
deb: build
	mkdir -p dist
	VERSION=$(DEB_VERSION) DEB_ARCH=$(DEB_ARCH) HOTDESK_BIN=bin/hotdeskd DEB_MAINTAINER='hotdesk maintainers <hotdesk@example.org>' \
	  $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2 pkg --config packaging/nfpm.yaml --packager deb --target dist/hotdesk_$(DEB_VERSION)_$(DEB_ARCH).deb

# test-packaging verifies the unit, the alert rules and the .deb (installed into a throw-away root).
test-packaging: build
	HOTDESKD_BIN=bin/hotdeskd VERSION=$(DEB_VERSION) packaging/test.sh

clean:
	rm -rf bin dist
