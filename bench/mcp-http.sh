#!/usr/bin/env bash
# read_file over MCP Streamable HTTP with 1 and 8 clients: throughput and latency.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/toolhost}
calls=${2:-1000}
[ -x "$bin" ] || { echo "bench: $bin is not built; run 'swift build -c release' (make bench does)" >&2; exit 1; }
echo "toolhost: $bin, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
python3 bench/mcp_http.py "$bin" "$calls"
