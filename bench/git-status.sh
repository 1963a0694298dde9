#!/usr/bin/env bash
# git_status per call over MCP stdio: toolhost against mcp-server-git (installed in .venv by setup).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/toolhost}
calls=${2:-200}
[ -x "$bin" ] || { echo "bench: $bin is not built; run 'swift build -c release' (make bench does)" >&2; exit 1; }
[ -x .venv/bin/mcp-server-git ] || { echo "bench: .venv/bin/mcp-server-git is missing; run scripts/setup.sh" >&2; exit 1; }
echo "toolhost: $bin, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
python3 bench/git_status.py "$bin" .venv/bin/mcp-server-git "$calls"
