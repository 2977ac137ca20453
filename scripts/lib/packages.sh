# shellcheck shell=bash
# Debian packages coblock needs to build, test and fuzz, and the step that
# installs the missing ones. Sourced by scripts/demo.sh and scripts/test.sh.
#
# Quiet by design: prints nothing when everything is installed; otherwise one
# line naming what it installs, with apt's output in a log file that is shown
# (its tail) only on failure. Set COBLOCK_SKIP_DEPS=1 to skip this step on a
# machine that is not Debian and has the dependencies some other way.

COBLOCK_DEB_PACKAGES=(
  # toolchain and build system
  g++ clang libclang-rt-14-dev meson ninja-build pkg-config
  python3           # scripts/lib/count_junit.py (meson depends on it anyway)
  # libraries
  libboost-context-dev libaio-dev liburing-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev zlib1g-dev libzstd-dev libedit-dev
  # tests, benchmarks, fuzzing, interop
  libgtest-dev libgmock-dev libbenchmark-dev afl++ qemu-utils
  groff-base        # tests/io/manpage.sh renders the man page
)

# Print the packages of "$@" that dpkg does not have installed.
coblock_missing_packages() {
  local pkg status
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) || status=
    case "$status" in
      *" ok installed") ;;
      *) printf '%s\n' "$pkg" ;;
    esac
  done
}

# Install whatever of COBLOCK_DEB_PACKAGES is missing. Returns non-zero (after
# saying why) when that is impossible or apt fails.
coblock_install_packages() {
  if [[ "${COBLOCK_SKIP_DEPS:-}" == 1 ]]; then
    return 0
  fi
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: this step needs Debian's dpkg and apt-get (Debian 12 is supported)." >&2
    echo "Install these packages some other way and rerun with COBLOCK_SKIP_DEPS=1:" >&2
    echo "  ${COBLOCK_DEB_PACKAGES[*]}" >&2
    return 1
  fi

  local missing=()
  mapfile -t missing < <(coblock_missing_packages "${COBLOCK_DEB_PACKAGES[@]}")
  if ((${#missing[@]} == 0)); then
    return 0
  fi

  local sudo=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "error: missing Debian packages: ${missing[*]}" >&2
      echo "Run this script as root, or install them first:" >&2
      echo "  apt-get install ${missing[*]}" >&2
      return 1
    fi
  fi

  local log
  log=$(mktemp "${TMPDIR:-/tmp}/coblock-apt.XXXXXX.log")
  echo "Installing Debian packages: ${missing[*]} (log: $log)"
  if "${sudo[@]}" apt-get update -qq </dev/null >>"$log" 2>&1 &&
     "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
       apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >>"$log" 2>&1; then
    rm -f "$log"
    # Double-check: apt can "succeed" without installing a package it does
    # not know under that name.
    mapfile -t missing < <(coblock_missing_packages "${missing[@]}")
    if ((${#missing[@]} == 0)); then
      return 0
    fi
    echo "error: still not installed after apt-get: ${missing[*]}" >&2
    return 1
  fi
  echo "error: installing packages failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  return 1
}
