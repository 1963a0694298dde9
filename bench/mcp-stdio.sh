#!/usr/bin/env bash
# Runs the stdio benchmark against a built toolhost (default: the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/toolhost}
calls=${2:-500}
[ -x "$bin" ] || { echo "bench: $bin is not built; run 'swift build -c release' (make bench does)" >&2; exit 1; }
echo "toolhost: $bin, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
python3 bench/mcp_stdio.py "$bin" "$calls"
