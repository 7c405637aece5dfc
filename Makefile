# Run 'make' or 'make help' for the list of targets.
.DEFAULT_GOAL := help
GO ?= go
# An execution count, not a duration: a duration budget can end in a spurious
# "context deadline exceeded" failure on Go 1.26 (golang/go#75804, fixed in 1.27).
FUZZTIME ?= 20000x
# Differential fuzz targets (Fuzz…Differential) run an outside tool (xsltproc,
# xmllint) per input, so they get fewer executions.
FUZZTIME_DIFFERENTIAL ?= 1500x
STATICCHECK ?= v0.8.2

.PHONY: help build dev test test-short vet fmt-check tidy-check lint cross fuzz bench clean

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the sluice binary into bin/sluice
	$(GO) build -o bin/sluice ./cmd/sluice

dev: ## run 'sluice dev': the whole platform with a demo pipeline
	$(GO) run ./cmd/sluice dev

test: vet fmt-check tidy-check lint cross ## checks, every test with -race, then each fuzz target briefly (set SLUICE_TEST_NATS_URL for the external-NATS runs)
	$(GO) test -race -shuffle=on -count=1 -timeout 20m ./...
	$(MAKE) fuzz

test-short: ## run the tests without -race and without the long crash tests
	$(GO) test -short -count=1 ./...

vet: ## go vet
	$(GO) vet ./...

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

tidy-check: ## fail if go mod tidy would change go.mod or go.sum
	$(GO) mod tidy -e -diff # -e: a test-only dependency of modernc.org/sqlite is missing from the module proxy

fuzz: ## run every fuzz target (found in the code) for FUZZTIME executions (default 20000x; FUZZTIME_DIFFERENTIAL for Fuzz…Differential)
	@git grep -n '^func Fuzz' -- '*_test.go' | sed -E 's|^([^:]*):[0-9]+:func (Fuzz[A-Za-z0-9_]*).*|\1 \2|' | sort | \
	while read -r file name; do \
		dir=$$(dirname "$$file"); \
		n=$(FUZZTIME); case "$$name" in *Differential) n=$(FUZZTIME_DIFFERENTIAL);; esac; \
		echo "fuzz $$name ./$$dir ($$n)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$n "./$$dir" || exit 1; \
	done

lint: ## staticcheck (from the module proxy, pinned)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

cross: ## vet and build for macOS and Windows too, and the image's static Linux build
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOOS=darwin $(GO) build -o /dev/null ./cmd/sluice
	GOOS=windows $(GO) build -o /dev/null ./cmd/sluice
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -o /dev/null ./cmd/sluice # the image's static build (Dockerfile); also warms the cache for deploy_test

bench: build ## run the hub benchmark (sluice bench hub)
	./bin/sluice bench hub

clean: ## remove build output and the default data directory
	rm -rf bin sluice-data
