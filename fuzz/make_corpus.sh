#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/<target>/seed-*:
#   1. fuzz_seedgen (fuzz/seedgen.cc) writes small valid structures and images
#      of every variant from our own encoders and layout builders;
#   2. if qemu-img/qemu-io are installed, tiny images made and written by QEMU
#      are added to the driver corpora (seed-qemu-*), wrapped by seedgen.
# Other corpus entries (crash-* regressions, entries kept by afl-cmin) are left
# alone. Usage: fuzz/make_corpus.sh [BUILD_DIR]   (default: build, a replay build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
ninja -C "$build" -j2 fuzz/fuzz_seedgen >/dev/null
seedgen=$build/fuzz/fuzz_seedgen
corpus=fuzz/corpus

find "$corpus" -name 'seed-*' -type f -delete 2>/dev/null || true
"$seedgen" "$corpus"

if ! command -v qemu-img >/dev/null 2>&1 || ! command -v qemu-io >/dev/null 2>&1; then
  echo "make_corpus: qemu-img/qemu-io not installed: no QEMU-made seeds"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The first cluster of a qcow2 image (what the header harness parses).
cluster0() {
  local cluster_size
  cluster_size=$(qemu-img info --output=json "$1" | sed -n 's/.*"cluster-size": \([0-9]*\).*/\1/p')
  head -c "${cluster_size:-65536}" "$1"
}
# name format create-options qemu-io commands...
make_image() {
  local name=$1 fmt=$2 opts=$3
  shift 3
  local img=$tmp/$name.$fmt
  qemu-img create -q -f "$fmt" ${opts:+-o "$opts"} "$img" 4M
  local cmd
  for cmd in "$@"; do
    qemu-io -f "$fmt" -c "$cmd" "$img" >/dev/null
  done
  mkdir -p "$corpus/driver_$fmt"
  "$seedgen" wrap "$img" "$corpus/driver_$fmt/seed-qemu-$name"
  if [[ $fmt == qcow2 ]]; then
    cluster0 "$img" >"$corpus/qcow2_header/seed-qemu-$name"
  fi
}
writes=("write -P 0xab 0 4k" "write -P 0xcd 1M 6k" "write -z 2M 64k" "discard 1M 4k")
make_image data qcow2 "cluster_size=4096" "${writes[@]}"
make_image extl2 qcow2 "cluster_size=16384,extended_l2=on" "${writes[@]}"
make_image compressed qcow2 "cluster_size=4096" "write -c -P 0x11 0 4k" "write -c -P 0x22 8k 4k"
make_image snapshot qcow2 "cluster_size=4096" "write -P 0x33 0 8k"
qemu-img snapshot -c snap1 "$tmp/snapshot.qcow2"
"$seedgen" wrap "$tmp/snapshot.qcow2" "$corpus/driver_qcow2/seed-qemu-snapshot"
cluster0 "$tmp/snapshot.qcow2" >"$corpus/qcow2_header/seed-qemu-snapshot"
make_image v2 qcow2 "compat=0.10,cluster_size=4096" "${writes[@]}"
make_image data qcow "" "write -P 0xab 0 4k" "write -P 0xcd 1M 6k"
make_image data vhdx "" "write -P 0xab 0 4k" "write -P 0xcd 1M 6k"
make_image fixed vhdx "subformat=fixed,block_size=1M" "write -P 0xab 0 4k"
make_image data raw "" "write -P 0xab 0 4k"
echo "make_corpus: QEMU-made seeds added"
