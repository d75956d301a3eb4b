#!/usr/bin/env bash
# End-to-end tests of the desktop app: builds the app the way tauri-driver needs it
# (`tauri build --debug --no-bundle`: a plain `cargo build` would load the dev
# server's URL and show a blank window) and the server, then runs e2e.test.mjs inside
# a throwaway desktop session.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[[ -d ui/node_modules ]] || npm --prefix ui ci --no-audit --no-fund
[[ -n "${SKIP_BUILD:-}" ]] || {
  cargo build -p repairops-server --bin repairops-server
  ui/node_modules/.bin/tauri build --debug --no-bundle
}
exec tests/desktop/with-desktop-session.sh node --test --test-reporter=spec tests/desktop/e2e.test.mjs
