#!/usr/bin/env bash
# End-to-end tests of the desktop app: builds the app the way tauri-driver needs it
# (the built UI inside the binary, as `tauri build --debug --no-bundle` makes it: a
# plain `cargo build` would load the dev server's URL and show a blank window) and the
# server, then runs e2e.test.mjs inside a throwaway desktop session. The cargo build
# is the workspace's with the `custom-protocol` feature, the same build scripts/test
# runs the unit tests with, so nothing is compiled twice.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[[ -n "${SKIP_BUILD:-}" ]] || {
  scripts/build-ui
  cargo build --workspace --bins --locked --features repairops-desktop/custom-protocol
}
exec tests/desktop/with-desktop-session.sh node --test --test-reporter=spec tests/desktop/e2e.test.mjs
