#!/usr/bin/env bash
# Run every coblock test, the way CI does (.ci/run calls this):
#   1. install missing Debian packages (scripts/lib/packages.sh);
#   2. configure and build `build` (plain, debugoptimized) and `build-asan`
#      (ASan+UBSan at -O1 -g1), and run `meson test` in each;
#   3. run the extra CI stages listed in STAGES that exist (e.g. fuzz/ci.sh).
# Results are counted per GoogleTest case (scripts/lib/count_junit.py); a
# failed build, a crashed program or a broken stage counts as one failure.
# The last line is `N passed, M failed, K skipped` over everything; the exit
# status is 0 only when M is 0.
#
# Stage convention: a stage is a bash script run from the repository root
# with stdin at /dev/null and COBLOCK_BUILD_DIR / COBLOCK_ASAN_BUILD_DIR in
# its environment (both already built). Its last non-empty output line must
# be `N passed, M failed` (optionally `, K skipped`); those numbers are added
# to the total. A stage that prints no such line, or exits non-zero while
# reporting 0 failed, counts as one failure.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib/packages.sh
source scripts/lib/packages.sh
# shellcheck source=lib/build.sh
source scripts/lib/build.sh

STAGES=(fuzz/ci.sh)

coblock_install_packages

# Sanitizer reports must fail the test (UBSan only prints by default).
# Options already in the environment come last, so they win.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export COBLOCK_BUILD_DIR=build COBLOCK_ASAN_BUILD_DIR=build-asan

jobs=$(nproc 2>/dev/null || echo 2)
total_pass=0 total_fail=0 total_skip=0
builds_ok=1
summary=()
count_re='^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$'

# record LABEL PASS FAIL SKIP
record() {
  total_pass=$((total_pass + $2))
  total_fail=$((total_fail + $3))
  total_skip=$((total_skip + $4))
  summary+=("$(printf '  %-26s %s passed, %s failed, %s skipped' "$1" "$2" "$3" "$4")")
}

# run_build LABEL DIR MESON_TEST_ARGS... -- MESON_SETUP_OPTIONS...
run_build() {
  local label=$1 dir=$2
  shift 2
  local test_args=()
  while (($#)) && [[ $1 != -- ]]; do test_args+=("$1"); shift; done
  shift

  echo "==> $label: configure $dir"
  if ! coblock_configure "$dir" "$@"; then
    builds_ok=0
    record "$label" 0 1 0
    return
  fi
  echo "==> $label: build"
  if ! coblock_build "$dir"; then
    echo "==> $label: BUILD FAILED"
    builds_ok=0
    record "$label" 0 1 0
    return
  fi
  echo "==> $label: test"
  python3 scripts/lib/count_junit.py clean "$dir"
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$jobs" \
    "${test_args[@]}" </dev/null || true   # counted below, per test case

  local out last
  if out=$(python3 scripts/lib/count_junit.py count "$dir") &&
     last=$(tail -n 1 <<<"$out") && [[ $last =~ $count_re ]]; then
    sed '$d' <<<"$out" | sed "s|^|==> $label: |"
    echo "==> $label: $last"
    record "$label" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[4]:-0}"
  else
    echo "==> $label: could not count the test results"
    record "$label" 0 1 0
  fi
}

run_build "build (plain)" build -- "${COBLOCK_PLAIN_OPTS[@]}"
run_build "build-asan (ASan+UBSan)" build-asan --timeout-multiplier 3 -- "${COBLOCK_ASAN_OPTS[@]}"

for stage in "${STAGES[@]}"; do
  [[ -f $stage ]] || continue
  echo "==> stage $stage"
  log=$(mktemp "${TMPDIR:-/tmp}/coblock-stage.XXXXXX.log")
  set +e
  bash "$stage" </dev/null 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  last=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | tr -d '\r') || last=
  rm -f "$log"
  if [[ $last =~ $count_re ]]; then
    p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} s=${BASH_REMATCH[4]:-0}
    if ((rc != 0 && f == 0)); then
      echo "==> stage $stage exited with status $rc"
      f=1
    fi
    record "$stage" "$p" "$f" "$s"
  else
    echo "==> stage $stage (exit status $rc) did not end with 'N passed, M failed'"
    record "$stage" 0 1 0
  fi
done

echo
echo "Summary:"
printf '%s\n' "${summary[@]}"
((builds_ok)) || echo "  (a build failed: see above)"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
((total_fail == 0 && builds_ok))
