# shellcheck shell=bash
# Configure and build one meson build directory. Sourced by scripts/demo.sh
# and scripts/test.sh after they cd to the repository root.

# coblock_configure DIR [meson options...]
# Sets up DIR, or reconfigures it in place with the given options; if that
# fails (e.g. a build dir made by another meson version) wipes it and sets it
# up again. meson's output is shown only on failure.
coblock_configure() {
  local dir=$1
  shift
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/coblock-setup.XXXXXX.log")
  if [[ -f "$dir/meson-private/coredata.dat" ]]; then
    if meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 ||
       meson setup --wipe "$dir" "$@" >"$log" 2>&1; then
      rm -f "$log"
      return 0
    fi
  elif meson setup "$dir" "$@" >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  echo "error: meson setup $dir failed (full log: $log):" >&2
  tail -n 40 "$log" >&2
  return 1
}

# coblock_build DIR: build everything in DIR with ninja.
coblock_build() {
  ninja -C "$1"
}

# Options of the plain build dir `build`, shared by demo.sh and test.sh so
# that neither reconfigures what the other set up.
# shellcheck disable=SC2034  # used by the scripts that source this file
COBLOCK_PLAIN_OPTS=(--buildtype=debugoptimized -Db_sanitize=none -Db_lundef=true -Dtests=true)
# Options of `build-asan` (test.sh only). clang needs b_lundef=false with
# sanitizers; g++ does not mind it. -O1 with line tables only (-g1) compiles
# in about half the time of -O2 -g, which is most of CI's budget; ASan
# recommends -O1 anyway, and reports still carry file:line. Benchmarks are
# not built there (nothing runs them under sanitizers), nor the fuzz replay
# programs: the CI fuzz stage (fuzz/ci.sh) runs every corpus entry under
# ASan+UBSan+LSan in its AFL++ build.
# shellcheck disable=SC2034
COBLOCK_ASAN_OPTS=(-Doptimization=1 -Ddebug=false -Dcpp_args=-g1 '-Db_sanitize=address,undefined'
                   -Db_lundef=false -Dtests=true -Dbenchmarks=disabled -Dfuzzing=false)
