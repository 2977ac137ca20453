#!/usr/bin/env bash
# CI fuzz stage (run by scripts/test.sh from the repository root): builds the
# AFL++ harnesses (ASan+UBSan, persistent mode; only the fuzz targets), fuzzes
# each one for a short time, two at a time, from its corpus in fuzz/corpus/,
# then replays everything afl-fuzz kept with leak detection on. A harness
# fails on any crash, hang or leak (the reproducer is printed: path, sanitizer
# report, hex dump and base64), or when afl-fuzz cannot run it.
# Last line: `N passed, M failed` (one per harness).
#
# Environment: COBLOCK_FUZZ_SECONDS (default 12) per harness,
# COBLOCK_FUZZ_JOBS (default 2) afl-fuzz processes at once,
# COBLOCK_AFL_BUILD_DIR (default build-afl).
set -uo pipefail
cd "$(dirname "$0")/.." || { echo "0 passed, 1 failed"; exit 1; }
# shellcheck source=fuzz/lib.sh
source fuzz/lib.sh

seconds=${COBLOCK_FUZZ_SECONDS:-12}
jobs=${COBLOCK_FUZZ_JOBS:-2}
start=$SECONDS

missing=$(fuzz_missing_tools)
if [[ -n $missing ]]; then
  echo "fuzz/ci.sh: AFL++ is not installed (missing: $missing); install the afl++ package" \
       "(scripts/lib/packages.sh does). No fuzzing was done."
  echo "0 passed, 1 failed"
  exit 1
fi

echo "fuzz: configure $FUZZ_AFL_BUILD"
if ! fuzz_configure_afl; then
  echo "0 passed, 1 failed"
  exit 1
fi
mapfile -t targets < <(fuzz_targets "$FUZZ_AFL_BUILD")
if ((${#targets[@]} == 0)); then
  echo "fuzz: no harnesses defined in $FUZZ_AFL_BUILD"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "fuzz: build ${#targets[@]} harnesses: ${targets[*]}"
build_log=$(mktemp "${TMPDIR:-/tmp}/coblock-afl-build.XXXXXX.log")
if ! AFL_QUIET=1 ninja -C "$FUZZ_AFL_BUILD" -j2 "${targets[@]/#/fuzz/fuzz_}" >"$build_log" 2>&1; then
  echo "fuzz: BUILD FAILED (log: $build_log):"
  grep -E 'error|FAILED' "$build_log" | head -n 40
  echo "0 passed, ${#targets[@]} failed"
  exit 1
fi
rm -f "$build_log"
echo "fuzz: built in $((SECONDS - start)) s"

fuzz_afl_env
results=$FUZZ_AFL_BUILD/fuzz-ci
rm -rf "$results"
mkdir -p "$results"

# Prints a reproducer: where it is, what the sanitizer says, its bytes.
show_reproducer() {
  local target=$1 kind=$2 file=$3
  echo "---- $target: $kind reproducer $file ($(stat -c %s "$file") bytes)"
  echo "     reproduce: $FUZZ_AFL_BUILD/fuzz/fuzz_$target '$file'"
  ASAN_OPTIONS=symbolize=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:symbolize=1 \
    timeout 20 "$FUZZ_AFL_BUILD/fuzz/fuzz_$target" "$file" 2>&1 | tail -n 40 | sed 's/^/     | /'
  echo "     hex dump (first 512 bytes):"
  od -A x -t x1z -v -N 512 "$file" | sed 's/^/     /'
  if (($(stat -c %s "$file") <= 65536)); then
    echo "     base64 (decode with base64 -d into fuzz/corpus/$target/crash-NAME):"
    base64 -w 100 "$file" | sed 's/^/     /'
  fi
}

# fuzz_one TARGET: fuzzes, checks, writes RESULTS/TARGET.result (PASS/FAIL line).
fuzz_one() {
  local target=$1 out=$results/$1
  local corpus=fuzz/corpus/$target
  local log=$results/$target.log
  local dict args=()
  dict=$(fuzz_dict "$target") && args+=(-x "$dict")
  if [[ ! -d $corpus ]] || [[ -z $(ls -A "$corpus") ]]; then
    corpus=$results/$target.empty-seed
    mkdir -p "$corpus"
    printf 'seed' >"$corpus/seed"
  fi
  timeout $((seconds + 120)) afl-fuzz -V "$seconds" -t 2000 -m none -i "$corpus" -o "$out" \
    "${args[@]}" -- "$FUZZ_AFL_BUILD/fuzz/fuzz_$target" >"$log" 2>&1
  local rc=$?
  local stats=$out/default/fuzzer_stats
  {
    if [[ ! -f $stats ]]; then
      echo "FAIL $target: afl-fuzz did not run (exit status $rc); its output:"
      tail -n 30 "$log" | sed 's/^/     | /'
      return
    fi
    local execs eps edges crashes hangs
    execs=$(sed -n 's/^execs_done *: //p' "$stats")
    eps=$(sed -n 's/^execs_per_sec *: //p' "$stats")
    edges=$(sed -n 's/^edges_found *: //p' "$stats")
    local failed=0 f
    for f in "$out"/default/crashes/id:*; do
      [[ -f $f ]] || continue
      failed=1
      show_reproducer "$target" crash "$f"
    done
    for f in "$out"/default/hangs/id:*; do
      [[ -f $f ]] || continue
      failed=1
      show_reproducer "$target" hang "$f"
    done
    crashes=$(find "$out/default/crashes" -name 'id:*' 2>/dev/null | wc -l)
    hangs=$(find "$out/default/hangs" -name 'id:*' 2>/dev/null | wc -l)
    # Leaks: replay the queue in one process with LeakSanitizer on.
    local leak_log=$results/$target.leaks
    if ! ASAN_OPTIONS=detect_leaks=1:symbolize=1:abort_on_error=0 \
         timeout 120 "$FUZZ_AFL_BUILD/fuzz/fuzz_$target" "$out"/default/queue/id:* \
         >"$leak_log" 2>&1; then
      failed=1
      echo "---- $target: replaying the queue with leak detection failed:"
      grep -v '^replaying ' "$leak_log" | tail -n 40 | sed 's/^/     | /'
    fi
    local summary="execs $execs ($eps/s), edges $edges, crashes $crashes, hangs $hangs"
    if ((failed)); then
      echo "FAIL $target: $summary"
    else
      echo "PASS $target: $summary"
    fi
  } >"$results/$target.result" 2>&1
}

running=0
for target in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$target" &
  running=$((running + 1))
done
wait

pass=0 fail=0
for target in "${targets[@]}"; do
  if [[ -f $results/$target.result ]]; then
    cat "$results/$target.result"
    if [[ $(tail -n 1 "$results/$target.result") == PASS* ]]; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1))
    fi
  else
    echo "FAIL $target: no result"
    fail=$((fail + 1))
  fi
done
echo "fuzz: ${#targets[@]} harnesses, ${seconds} s each, $((SECONDS - start)) s in all"
echo "$pass passed, $fail failed"
((fail == 0))
