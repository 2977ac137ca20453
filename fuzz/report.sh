#!/usr/bin/env bash
# Prints, per fuzzing target, what afl-fuzz recorded: executions, exec/s,
# corpus entries (paths), edges found, crashes and hangs.
#   fuzz/report.sh [DIR]   DIR holds one afl-fuzz output dir per target
#                          (default fuzz/out, the fuzz/run.sh state; fuzz/ci.sh
#                          leaves its runs in build-afl/fuzz-ci)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-fuzz/out}
printf '%-22s %12s %9s %7s %7s %8s %6s %8s\n' target execs exec/s paths edges crashes hangs run_s
found=0
for stats in "$dir"/*/*/fuzzer_stats; do
  [[ -f $stats ]] || continue
  found=1
  target=$(basename "$(dirname "$(dirname "$stats")")")
  instance=$(basename "$(dirname "$stats")")
  [[ $instance == default ]] || target="$target/$instance"
  field() { sed -n "s/^$1 *: //p" "$stats"; }
  start=$(field start_time) last=$(field last_update)
  printf '%-22s %12s %9s %7s %7s %8s %6s %8s\n' "$target" "$(field execs_done)" \
    "$(field execs_per_sec)" "$(field corpus_count)" "$(field edges_found)" \
    "$(field saved_crashes)" "$(field saved_hangs)" "$((last - start))"
done
if ((!found)); then
  echo "no afl-fuzz output under $dir" >&2
  exit 1
fi
