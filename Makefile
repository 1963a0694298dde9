# The two commands of the README: `make demo` and `make test`. Each sets up what it needs first.
SWIFT ?= swift
BIN = .build/debug/toolhost

.PHONY: setup build test demo bench clean

setup:
	./scripts/setup.sh

build: setup
	$(SWIFT) build

test: build
	$(SWIFT) test

demo: build
	./scripts/demo.sh $(BIN)

bench: setup
	$(SWIFT) build -c release
	./bench/mcp-stdio.sh .build/release/toolhost
	./bench/git-status.sh .build/release/toolhost
	./bench/mcp-http.sh .build/release/toolhost

clean:
	rm -rf .build .venv
