# The two commands of the README: `make demo` and `make test`. Each sets up what it needs first.
SWIFT ?= swift
BIN = .build/debug/toolhost
# At most this many test cases at once. Every test is async, so without a bound Swift Testing
# starts them all together, and a hundred tests' child processes on two cores delay even an
# in-process reply by more than 30 s.
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH ?= 6

.PHONY: setup build test test-fast demo bench clean

setup:
	./scripts/setup.sh

build: setup
	$(SWIFT) build

test: build
	$(SWIFT) test
	./bench/run.sh smoke $(BIN)

# The in-process tier only (no CLITests, no bench smoke): see CONTRIBUTING.md.
test-fast: setup
	$(SWIFT) test --skip 'CLITests\.'

demo: build
	./scripts/demo.sh $(BIN)

bench: setup
	$(SWIFT) build -c release
	./bench/run.sh mcp-stdio
	./bench/run.sh git-status
	./bench/run.sh mcp-http
	./bench/run.sh build-output
	./bench/run.sh agent-loop
	./bench/run.sh screenshot
	./bench/run.sh tag-manager
	./bench/run.sh prompt-tokens
	./bench/run.sh search
	./bench/run.sh egress
	./bench/run.sh checkpoints
	./bench/run.sh big-write
	./bench/run.sh serve-start
	./bench/run.sh session-start

clean:
	rm -rf .build .venv .venv-mcp-use .venv-eval
