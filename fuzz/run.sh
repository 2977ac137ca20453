#!/usr/bin/env bash
# Long fuzzing campaign outside CI:  fuzz/run.sh TARGET[,TARGET...]|all MINUTES
# Builds the AFL++ harnesses (as fuzz/ci.sh does), then runs one afl-fuzz per
# target, as many at once as there are cores (COBLOCK_FUZZ_JOBS overrides),
# each for MINUTES. State lives in fuzz/out/<target>/ and a second run
# resumes from it (AFL_AUTORESUME). Crashes are left in
# fuzz/out/<target>/default/crashes/; fuzz/report.sh summarises.
# New interesting inputs can be merged into the committed corpus with
#   afl-cmin -i fuzz/out/T/default/queue -o /tmp/min -- build-afl/fuzz/fuzz_T
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=fuzz/lib.sh
source fuzz/lib.sh

if (($# != 2)) || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: fuzz/run.sh TARGET[,TARGET...]|all MINUTES" >&2
  exit 2
fi
missing=$(fuzz_missing_tools)
if [[ -n $missing ]]; then
  echo "fuzz/run.sh: AFL++ is not installed (missing: $missing)" >&2
  exit 1
fi
fuzz_configure_afl
mapfile -t known < <(fuzz_targets "$FUZZ_AFL_BUILD")
if [[ $1 == all ]]; then
  targets=("${known[@]}")
else
  IFS=, read -r -a targets <<<"$1"
fi
for t in "${targets[@]}"; do
  if ! printf '%s\n' "${known[@]}" | grep -qx "$t"; then
    echo "fuzz/run.sh: unknown target '$t'; known: ${known[*]}" >&2
    exit 2
  fi
done
AFL_QUIET=1 ninja -C "$FUZZ_AFL_BUILD" -j2 "${targets[@]/#/fuzz/fuzz_}"
fuzz_afl_env
export AFL_AUTORESUME=1
seconds=$(($2 * 60))
jobs=${COBLOCK_FUZZ_JOBS:-$(nproc)}
mkdir -p fuzz/out

running=0
for t in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
  args=()
  dict=$(fuzz_dict "$t") && args+=(-x "$dict")
  echo "fuzz: $t for $2 min -> fuzz/out/$t (log fuzz/out/$t.log)"
  afl-fuzz -V "$seconds" -t 2000 -m none -i "fuzz/corpus/$t" -o "fuzz/out/$t" "${args[@]}" \
    -- "$FUZZ_AFL_BUILD/fuzz/fuzz_$t" >"fuzz/out/$t.log" 2>&1 &
  running=$((running + 1))
done
wait || true
exec fuzz/report.sh fuzz/out
