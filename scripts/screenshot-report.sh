#!/usr/bin/env bash
# Makes docs/demo-report.png, the picture in the README: runs the demo (the normal, ~12 s
# story), which writes its self-contained HTML report, then has headless Chromium screenshot
# that page at 1200x700.
#
#   scripts/screenshot-report.sh [out.png]     # default: docs/demo-report.png
#
# Needs the native addon built (npm run build) and Chromium (Debian/Ubuntu: apt-get install
# chromium; or set CHROMIUM=/path/to/chrome). Nothing is fetched: the page has no external
# references, and the flags below keep Chromium from phoning home. --no-sandbox is needed
# when running as root (e.g. in a container); --user-data-dir is a throwaway profile.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/docs/demo-report.png}"
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"
if [ -z "$chromium" ]; then
  echo "screenshot-report: no Chromium found (install the 'chromium' package or set CHROMIUM)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
report="$work/demo-report.html"

# The demo exits non-zero if its story did not happen; then there is nothing worth a picture.
(cd "$root" && node demo/demo.js --report "$report" >"$work/demo.log") || {
  echo "screenshot-report: the demo failed; its output:" >&2
  cat "$work/demo.log" >&2
  exit 1
}

mkdir -p "$(dirname "$out")"
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$work/profile" --window-size=1200,700 \
  --screenshot="$out" "file://$report" 2>"$work/chromium.log" || {
  echo "screenshot-report: chromium failed; its output:" >&2
  cat "$work/chromium.log" >&2
  exit 1
}
echo "wrote $out"
