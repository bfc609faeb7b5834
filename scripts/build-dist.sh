#!/usr/bin/env bash
# npm run build:dist — builds the distributable native binaries into the platform packages
# under npm/<platform>/, the way they are published, and checks their glibc floor.
#
#   linux-x64-gnu    x86_64-unknown-linux-gnu.2.17   required (the build fails without it)
#   linux-arm64-gnu  aarch64-unknown-linux-gnu.2.17  if rustup has (or can add) the target
#   linux-x64-musl   x86_64-unknown-linux-musl       if rustup has (or can add) the target
#   linux-arm64-musl aarch64-unknown-linux-musl      if rustup has (or can add) the target
#
# The Linux binaries are cross-linked with zig (PyPI's `ziglang`) through `cargo-zigbuild`,
# driven by `napi build -x`: the `.2.17` suffix makes zig link against glibc 2.17's symbol
# versions, so the binary loads on Amazon Linux 2 and every Lambda Node runtime. After each
# glibc build, `objdump -T` lists the GLIBC_x.y versions the binary needs; a version newer
# than GLIBC_FLOOR (2.17) fails the build. musl binaries must need no GLIBC symbol at all.
#
# darwin-x64, darwin-arm64 and win32-x64-msvc are built on their own runners by
# .github/workflows/CI.yml, never here (see the SKIPPED lines).
#
# Environment: BUILD_DIST_TARGETS="linux-x64-gnu linux-arm64-gnu" builds a subset;
# BUILD_DIST_NO_INSTALL=1 never installs tools (ziglang, cargo-zigbuild, rustup targets).
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC_FLOOR=2.17
ALL_TARGETS="linux-x64-gnu linux-arm64-gnu linux-x64-musl linux-arm64-musl"
TARGETS="${BUILD_DIST_TARGETS:-$ALL_TARGETS}"
OUT=target/dist
NAPI=node_modules/.bin/napi
command -v objdump >/dev/null || { echo "build:dist: objdump (binutils) is required to check the glibc floor" >&2; exit 1; }

triple_of() {
  case "$1" in
    linux-x64-gnu) echo x86_64-unknown-linux-gnu ;;
    linux-arm64-gnu) echo aarch64-unknown-linux-gnu ;;
    linux-x64-musl) echo x86_64-unknown-linux-musl ;;
    linux-arm64-musl) echo aarch64-unknown-linux-musl ;;
    *) echo "build:dist: unknown target $1" >&2; return 1 ;;
  esac
}

# check_floor <platform> <file>: prints the binary's floor, or explains and fails
check_floor() {
  local plat=$1 file=$2 versions newest needed v
  versions=$(objdump -T "$file" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV || true)
  newest=$(echo "$versions" | tail -1)
  case "$plat" in
    *-gnu)
      [ -n "$newest" ] || { echo "build:dist: $plat: objdump -T shows no GLIBC symbol at all in $file" >&2; return 1; }
      if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_FLOOR" | sort -V | tail -1)" != "$GLIBC_FLOOR" ]; then
        echo "build:dist: FAIL $file needs GLIBC_$newest, newer than the floor GLIBC_$GLIBC_FLOOR; objdump -T:" >&2
        for v in $versions; do
          [ "$(printf '%s\n%s\n' "$v" "$GLIBC_FLOOR" | sort -V | tail -1)" = "$GLIBC_FLOOR" ] && continue
          objdump -T "$file" | grep -F "(GLIBC_$v)" | sed 's/^/  /' >&2 || true
        done
        return 1
      fi
      echo "GLIBC_$newest"
      ;;
    *-musl)
      if [ -n "$newest" ]; then echo "build:dist: FAIL $file ($plat) references glibc symbols (GLIBC_$newest)" >&2; return 1; fi
      needed=$(objdump -p "$file" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
      case "$needed" in *libc.so*) ;; *) echo "build:dist: FAIL $file ($plat) does not link libc dynamically (needs: $needed)" >&2; return 1 ;; esac
      echo "musl (needs: ${needed% })"
      ;;
  esac
}

# scripts/build-dist.sh --check <platform> <file>: only check a binary's floor
if [ "${1:-}" = --check ]; then
  floor=$(check_floor "$2" "$3") || exit 1
  echo "build:dist: $3 ($2): $floor: ok"
  exit 0
fi

declare -a SUMMARY=() SKIPPED=()
skip() { SKIPPED+=("$1: $2"); echo "build:dist: SKIPPED $1: $2"; }

[ -x "$NAPI" ] || { echo "build:dist: $NAPI not found; run npm install first" >&2; exit 1; }

# ---- tools -------------------------------------------------------------------------------
have_zig() { command -v zig >/dev/null || python3 -m ziglang version >/dev/null 2>&1; }
if ! have_zig || ! command -v cargo-zigbuild >/dev/null; then
  if [ "${BUILD_DIST_NO_INSTALL:-}" = 1 ]; then
    echo "build:dist: zig and cargo-zigbuild are required: python3 -m pip install ziglang cargo-zigbuild" >&2; exit 1
  fi
  echo "build:dist: installing zig and cargo-zigbuild from PyPI (python3 -m pip install ziglang cargo-zigbuild)"
  python3 -m pip install -q --disable-pip-version-check ziglang cargo-zigbuild
  hash -r
fi
ZIG_VERSION=$(zig version 2>/dev/null || python3 -m ziglang version)
echo "build:dist: $(cargo --version), zig $ZIG_VERSION, $(cargo-zigbuild --version 2>/dev/null || echo cargo-zigbuild)"

ensure_target() { # <rust triple> -> 0 if installed (adding it with rustup if possible)
  local triple=$1 err
  if command -v rustup >/dev/null; then
    rustup target list --installed 2>/dev/null | grep -qx "$triple" && return 0
    if [ "${BUILD_DIST_NO_INSTALL:-}" = 1 ]; then REASON="rust target $triple is not installed (BUILD_DIST_NO_INSTALL=1)"; return 1; fi
    echo "build:dist: rustup target add $triple"
    if err=$(timeout 120 rustup target add "$triple" 2>&1); then return 0; fi
    REASON="\`rustup target add $triple\` failed ($(echo "$err" | grep -m1 -i 'error' || echo "$err" | tail -1))"
    return 1
  fi
  # no rustup: only the host target's standard library is there
  [ "$(rustc -vV | sed -n 's/^host: //p')" = "$triple" ] && return 0
  REASON="no rustup on PATH, and the installed Rust has only the $(rustc -vV | sed -n 's/^host: //p') standard library"
  return 1
}

# ---- build -------------------------------------------------------------------------------
for plat in $TARGETS; do
  triple=$(triple_of "$plat")
  REASON=""
  if ! ensure_target "$triple"; then
    if [ "$plat" = linux-x64-gnu ]; then echo "build:dist: cannot build the required target $plat: $REASON" >&2; exit 1; fi
    skip "$plat" "$REASON"
    continue
  fi
  case "$plat" in *-gnu) zig_target="$triple.$GLIBC_FLOOR" ;; *) zig_target="$triple" ;; esac
  echo
  echo "build:dist: ==== $plat: napi build --release --target $zig_target -x (cargo zigbuild)"
  started=$SECONDS
  rm -rf "${OUT:?}/$plat"
  js_args=(--no-js)
  # the loader (binding.js / binding.d.ts) is the same for every target: generate it once
  [ "$plat" = linux-x64-gnu ] && js_args=(--js binding.js --dts binding.d.ts)
  "$NAPI" build --platform --release --target "$zig_target" -x --output-dir "$OUT/$plat" "${js_args[@]}"
  file="$OUT/$plat/breakwater.$plat.node"
  [ -f "$file" ] || { echo "build:dist: $file was not produced" >&2; exit 1; }

  floor=$(check_floor "$plat" "$file") || exit 1
  arch=$(readelf -h "$file" | sed -n 's/^ *Machine: *//p' | sed 's/Advanced Micro Devices //')

  # -- into the platform package ---------------------------------------------------------------
  mkdir -p "npm/$plat"
  cp "$file" "npm/$plat/"
  if [ "$plat" = linux-x64-gnu ]; then cp "$OUT/$plat/binding.js" "$OUT/$plat/binding.d.ts" .; fi
  size=$(( $(stat -c %s "$file") / 1024 ))
  SUMMARY+=("$(printf '%-17s %-53s %5s KiB  %-8s %-22s %4ss' "$plat" "npm/$plat/breakwater.$plat.node" "$size" "$arch" "$floor" "$((SECONDS - started))")")
  echo "build:dist: $plat ok: $arch, floor $floor (from objdump -T)"
done

for plat in darwin-x64 darwin-arm64 win32-x64-msvc; do
  case " $TARGETS " in *" $plat "*) ;; *) [ -n "${BUILD_DIST_TARGETS:-}" ] && continue ;; esac
  case "$plat" in
    darwin-*) skip "$plat" "needs the macOS SDK to link (not redistributable, not on this machine); built on a macOS runner by .github/workflows/CI.yml" ;;
    win32-*) skip "$plat" "needs the MSVC CRT and Windows SDK (cargo-xwin downloads them from Microsoft, not from a package registry); built on a Windows runner by .github/workflows/CI.yml" ;;
  esac
done

echo
echo "build:dist: summary (glibc floor = the newest GLIBC_x.y that objdump -T finds; required <= $GLIBC_FLOOR)"
printf '%-17s %-53s %9s  %-8s %-22s %5s\n' platform binary size arch "glibc floor" time
for line in "${SUMMARY[@]}"; do echo "$line"; done
for line in "${SKIPPED[@]+"${SKIPPED[@]}"}"; do echo "SKIPPED $line"; done
