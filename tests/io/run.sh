#!/bin/bash
# Golden tests for coblock-io: runs every tests/io/NNN-name.sh with QEMU_IO
# pointing at the binary under test (through a symlink named qemu-io) and
# diffs its output against NNN-name.out, which was produced by running the
# same script against qemu-io 7.2.
#   run.sh BINARY            check; prints "ok N name" / "not ok N name" + diff
#   run.sh --regen BINARY    rewrite the .out files (use the real qemu-io)
set -u
regen=0
if [ "${1:-}" = "--regen" ]; then regen=1; shift; fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--regen] QEMU_IO_BINARY" >&2
    exit 2
fi
binary=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
ln -s "$binary" "$work/bin/qemu-io"
export PATH="$work/bin:$PATH"
export QEMU_IO=qemu-io

failed=0
n=0
for script in "$here"/[0-9][0-9][0-9]-*.sh; do
    n=$((n + 1))
    name=$(basename "$script" .sh)
    export TEST_DIR="$work/$name"
    mkdir -p "$TEST_DIR"
    actual="$work/$name.actual"
    bash "$script" > "$actual" 2>&1
    # A script prints "SKIP: reason" as its first line when the binary
    # lacks something it needs (e.g. a format driver not merged yet).
    if [ $regen = 0 ] && head -n 1 "$actual" | grep -q '^SKIP: '; then
        echo "ok $n $name # $(head -n 1 "$actual")"
        continue
    fi
    if [ $regen = 1 ]; then
        cp "$actual" "$here/$name.out"
        echo "regenerated $n $name"
    elif diff -u "$here/$name.out" "$actual" > "$work/$name.diff"; then
        echo "ok $n $name"
    else
        echo "not ok $n $name"
        cat "$work/$name.diff"
        failed=1
    fi
done
exit $failed
