# wasmhls — build, run, test, bench. `make run` and `make test` do all set-up
# on a fresh Debian 12 machine (apt packages and Go modules, see
# scripts/install-deps.sh).

GO        ?= go
BIN       := bin/wasmhls
PLUGINS   := store-null store-redis takeover-lease cleanup-lease
WASM_DIR  := plugins/builtin/wasm
WASM      := $(addprefix $(WASM_DIR)/,$(addsuffix .wasm,$(PLUGINS)))
GOTESTFLAGS ?= -race -count=1 -timeout 40m

.PHONY: all deps deps-test deps-bench plugins build run sample test test-go test-browser bench fuzz clean

all: build

deps:
	scripts/install-deps.sh

deps-test:
	scripts/install-deps.sh --test

deps-bench:
	scripts/install-deps.sh --bench

# Built-in plugins: wasip1 reactors embedded into the server binary.
$(WASM_DIR)/%.wasm: FORCE
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./plugins/$*

plugins: $(WASM)

build: plugins
	$(GO) build -o $(BIN) ./cmd/wasmhls

sample:
	scripts/sample-media.sh media

# Single host, default config.yaml, sample media, http://localhost:8080.
run: deps build sample
	$(BIN) serve --config config.yaml

test: deps-test plugins
	cd test/browser && npm ci --no-audit --no-fund --loglevel=error
	$(GO) vet ./...
	$(GO) test $(GOTESTFLAGS) ./...

bench: deps-bench build
	$(GO) run ./bench/cmd/benchreport -out bench/REPORT.md

fuzz: plugins
	$(GO) test ./host/ -run '^$$' -fuzz FuzzDecodeResponse -fuzztime 60s

clean:
	rm -rf bin $(WASM) bench/out

FORCE:
