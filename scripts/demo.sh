#!/usr/bin/env bash
# The quick start: install missing Debian packages, configure and build
# `build` (plain, debugoptimized), then run the demo program. Arguments are
# passed to the demo.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib/packages.sh
source scripts/lib/packages.sh
# shellcheck source=lib/build.sh
source scripts/lib/build.sh

coblock_install_packages
coblock_configure build "${COBLOCK_PLAIN_OPTS[@]}"
coblock_build build

demo=build/examples/coblock-demo
if [[ ! -x $demo ]]; then
  echo "error: $demo was not built (is examples/ wired into meson.build?)" >&2
  exit 1
fi
exec "$demo" "$@"
