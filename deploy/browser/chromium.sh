#!/usr/bin/env bash
# Debian's Chromium for the console's browser tests (Playwright drives it through
# executable_path; `playwright install` is never run).
#
# ensure   install Debian's chromium with apt-get when /usr/bin/chromium is missing
#          (needs root); idempotent
# path     print the browser's path
set -euo pipefail

BROWSER="${NUDGE_CHROMIUM:-/usr/bin/chromium}"

log() { echo "[chromium.sh] $*" >&2; }

case "${1:-}" in
  ensure)
    if [[ -x "$BROWSER" ]]; then
      exit 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
      log "$BROWSER not found and not root: browser tests will be skipped (apt-get install chromium)"
      exit 0
    fi
    log "installing Debian's chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    "$BROWSER" --version >&2
    ;;
  path)
    echo "$BROWSER"
    ;;
  *)
    echo "usage: $0 ensure|path" >&2
    exit 2
    ;;
esac
