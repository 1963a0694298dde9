#!/usr/bin/env bash
# Prints the path of a llama-server binary, building it first when the cache has none.
# llama.cpp comes from the sources vendored in PyPI's llama-cpp-python sdist (there is no other
# source of it on these machines). The build takes 10-15 minutes on 2 cores, so the binary is cached
# outside the repository, in $TOOLHOST_CACHE (default ~/.cache/toolhost), keyed by the sdist version.
# GGML_NATIVE is off on purpose: a -march=native build dies with SIGILL on these machines.
set -euo pipefail
VERSION="0.3.36"
CACHE="${TOOLHOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/toolhost}"
BIN="$CACHE/llama-server-$VERSION/llama-server"
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
PIP="${PIP:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/pip}"
for tool in cmake g++ "$PIP"; do
  command -v "$tool" >/dev/null || { echo "llama-server.sh: $tool is missing; run ./scripts/setup.sh first" >&2; exit 1; }
done
work="$(mktemp -d "${TMPDIR:-/tmp}/llama-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "llama-server.sh: building llama-server $VERSION into $CACHE (10-15 minutes, once)" >&2
(cd "$work" && "$PIP" download -q --disable-pip-version-check --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" >&2)
tar -xzf "$work"/llama_cpp_python-"$VERSION".tar.gz -C "$work"
src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON \
  -DGGML_F16C=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$work/build" --target llama-server -j "$(nproc)" >&2
mkdir -p "$(dirname "$BIN")"
install -m 0755 "$work/build/bin/llama-server" "$BIN.partial"
mv "$BIN.partial" "$BIN"
echo "$BIN"
