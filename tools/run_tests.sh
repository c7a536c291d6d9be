#!/usr/bin/env bash
# Install everything and run lisette's whole test suite against a real local model server.
# This is the README's test command, and CI runs exactly this (see .ci/run).
# Phases: venv -> torch (CPU build) -> project with dev+local+proxy extras (builds llama-server) -> Chromium and
# redis-server (Debian's) -> tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True PIP_DISABLE_PIP_VERSION_CHECK=1
t0=$(date +%s); tp=$t0
phase() { local now=$(date +%s); echo "[time] $1: $((now-tp))s (total $((now-t0))s)"; tp=$now; }

[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
phase venv
# torch first: 2.13.0 is the CPU build; any other spec would pull GBs of CUDA packages.
pip install -q torch==2.13.0
phase torch
CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF" LLAMA_CPP_BUILD_JOBS=2 \
  pip install -q -e ".[dev,local,proxy]"
pip check
phase install
# The docs' browser tests drive Debian's Chromium through playwright (playwright's own browser download can't work
# here). CI runs as root on a fresh Debian machine; elsewhere this needs sudo.
# The fleet tests (tests/test_scale.py) start Debian's redis-server for two LiteLLM Proxies to share.
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi
phase apt

# One llama-server for the whole run; tools/suite.sh builds the docs site, runs every notebook, then pytest (which
# includes the browser tests of the site, tests/test_docs.py).
lisette-llama run -- bash tools/suite.sh
phase tests
