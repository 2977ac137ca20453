# shellcheck shell=bash
# Shared by fuzz/ci.sh and fuzz/run.sh (sourced from the repository root):
# the AFL++ build directory, the harness list, dictionaries and the
# environment afl-fuzz needs to run unattended.

FUZZ_AFL_BUILD=${COBLOCK_AFL_BUILD_DIR:-build-afl}
# -O1 without debug info: the build is most of the CI stage's time, and
# sanitizer reports still name the functions.
FUZZ_AFL_OPTS=(--native-file fuzz/afl-clang-fast.ini -Dfuzz_engine=afl -Doptimization=1
               -Ddebug=false '-Db_sanitize=address,undefined' -Db_lundef=false -Dtests=false
               -Dbenchmarks=disabled)

# Prints what is missing for AFL++ fuzzing; empty when nothing is.
fuzz_missing_tools() {
  local t
  for t in afl-fuzz afl-clang-fast afl-clang-fast++; do
    command -v "$t" >/dev/null 2>&1 || printf '%s ' "$t"
  done
}

# afl-fuzz without a terminal, on a shared machine, whatever core_pattern is.
# The sanitizers must abort (AFL++ insists on abort_on_error and symbolize=0);
# leaks are looked for afterwards, by replaying the queue (persistent mode
# would report them only at process exit, without the input).
fuzz_afl_env() {
  export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_QUIET=1
  export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_WARN_INSTABILITY=1
  export AFL_FAST_CAL=1
  export ASAN_OPTIONS=abort_on_error=1:symbolize=0:detect_leaks=0:allocator_may_return_null=1:detect_stack_use_after_return=0
  export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:symbolize=0:print_stacktrace=1
}

# Configures the AFL++ build dir once (reconfigures only when the options
# changed, e.g. a new driver folder appeared). Output only on failure.
fuzz_configure_afl() {
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/coblock-afl-setup.XXXXXX.log")
  if [[ -f $FUZZ_AFL_BUILD/meson-private/coredata.dat ]]; then
    AFL_QUIET=1 meson setup --reconfigure "$FUZZ_AFL_BUILD" "${FUZZ_AFL_OPTS[@]}" >"$log" 2>&1 ||
      AFL_QUIET=1 meson setup --wipe "$FUZZ_AFL_BUILD" "${FUZZ_AFL_OPTS[@]}" >"$log" 2>&1
  else
    AFL_QUIET=1 meson setup "$FUZZ_AFL_BUILD" "${FUZZ_AFL_OPTS[@]}" >"$log" 2>&1
  fi
  local rc=$?
  if ((rc != 0)); then
    echo "fuzz: meson setup $FUZZ_AFL_BUILD failed (log: $log):"
    tail -n 30 "$log"
    return 1
  fi
  rm -f "$log"
}

# The harness names (fuzz_<name> executables) the build dir defines.
fuzz_targets() {
  meson introspect "$1" --targets | python3 -c '
import json, sys
names = sorted(t["name"][len("fuzz_"):] for t in json.load(sys.stdin)
               if t["type"] == "executable" and t["name"].startswith("fuzz_")
               and t["name"] != "fuzz_seedgen")
print("\n".join(names))'
}

# The dictionary of a harness, if any.
fuzz_dict() {
  local target=$1 format
  case $target in
    driver_*) format=${target#driver_} ;;
    *) format=${target%%_*} ;;
  esac
  [[ -f fuzz/dict/$format.dict ]] && echo "fuzz/dict/$format.dict"
}
