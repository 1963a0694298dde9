#!/usr/bin/env bash
# Runs one benchmark against a built toolhost: bench/run.sh NAME [TOOLHOST] [CALLS]
#   mcp-stdio   execute/read_file over MCP stdio beside bash -c true and bwrap
#   git-status  git_status beside mcp-server-git (installed in .venv by scripts/setup.sh)
#   mcp-http    read_file over MCP Streamable HTTP with 1 and 8 clients
#   build-output  the build tool's result bytes against the raw build output, per broken case
#   agent-loop  the agent loop's cost per turn against a mock endpoint that answers at once
#   screenshot  a warm screenshot over MCP beside chromium's one-shot --screenshot
#   tag-manager the tag-manager scenario's wall time, and its tool-result bytes against raw command output
#   prompt-tokens the tag-manager scenario's prompt tokens with the compact tool schemas against the full ones
#   search      the grep tool beside grep -rn and rg on a 12,000-file tree, and its result bytes beside grep -rn's
#   checkpoints write_file in a 10,000-file tree beside an empty one (the checkpoints' cost), and an undo of rm -rf src
#   big-write   a 20 MB write_file over MCP stdio beside a minimal Python server doing the same: time, peak RSS
#   serve-start serve over stdio from exec to the initialize reply and to a first execute's, and its idle RSS, beside toolhost --version
#   session-start a new HTTP session and its first execute at 1, 100 and 1,000 live sessions, beside bwrap; server RSS; paced with --warm-sessions 8 beside none
#   harbor-trial  Harbor oracle trials in the toolhost environment, per phase, beside the same steps in bwrap
#   ray-showdown  8 scripted runs on a two-node local Ray cluster beside the same showdown run locally
#   egress      curl through the allowlist profile's egress proxy beside curl straight to the server: latency, throughput
#   smoke       every benchmark above with a handful of calls: proves each still runs (make test does this)
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bench/run.sh mcp-stdio|git-status|mcp-http|build-output|agent-loop|screenshot|tag-manager|prompt-tokens|search|egress|checkpoints|big-write|serve-start|session-start|harbor-trial|ray-showdown|smoke [TOOLHOST] [CALLS]}
bin=${2:-.build/release/toolhost}
if [ "$name" = smoke ]; then
  # The figures of a smoke run mean nothing (a debug build, a few calls); that each runs does.
  for bench in mcp-stdio:5 git-status:5 mcp-http:5 build-output: agent-loop:5 screenshot:2 tag-manager: prompt-tokens: search:2 egress:3 checkpoints:2 big-write:2 serve-start:2 session-start:3 harbor-trial:2 ray-showdown:1; do
    echo "== bench smoke: ${bench%%:*}"
    "$0" "${bench%%:*}" "$bin" ${bench#*:} >/dev/null || { echo "bench smoke: ${bench%%:*} failed; run bench/run.sh ${bench%%:*} $bin to see why" >&2; exit 1; }
  done
  echo "bench smoke: every benchmark ran"
  exit 0
fi
[ -x "$bin" ] || { echo "bench: $bin is not built; run 'swift build -c release' (make bench does)" >&2; exit 1; }
echo "toolhost: $bin, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
case "$name" in
  mcp-stdio) python3 bench/mcp_stdio.py "$bin" ${3:+"$3"} ;;
  mcp-http) python3 bench/mcp_http.py "$bin" ${3:+"$3"} ;;
  build-output) python3 bench/build_output.py "$bin" ;;
  agent-loop) python3 bench/agent_loop.py "$bin" ${3:+"$3"} ;;
  screenshot) python3 bench/screenshot.py "$bin" ${3:+"$3"} ;;
  tag-manager) python3 bench/tag_manager.py "$bin" ;;
  prompt-tokens) python3 bench/prompt_tokens.py "$bin" ;;
  search) python3 bench/search.py "$bin" ${3:+"$3"} ;;
  serve-start) python3 bench/serve_start.py "$bin" ${3:+"$3"} ;;
  harbor-trial) python3 bench/harbor_trial.py "$bin" ${3:+"$3"} ;;
  ray-showdown) python3 bench/ray_showdown.py "$bin" ${3:+"$3"} ;;
  egress) python3 bench/egress.py "$bin" ${3:+"$3"} ;;
  checkpoints) python3 bench/checkpoints.py "$bin" ${3:+"$3"} ;;
  big-write) python3 bench/big_write.py "$bin" ${3:+"$3"} ;;
  session-start) python3 bench/session_start.py "$bin" ${3:+"$3"} ;;
  git-status)
    [ -x .venv/bin/mcp-server-git ] || { echo "bench: .venv/bin/mcp-server-git is missing; run scripts/setup.sh" >&2; exit 1; }
    python3 bench/git_status.py "$bin" .venv/bin/mcp-server-git ${3:+"$3"} ;;
  *) echo "bench: unknown benchmark '$name'" >&2; exit 2 ;;
esac
