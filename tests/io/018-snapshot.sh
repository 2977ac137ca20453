# -s / open -s: a temporary qcow2 overlay takes the writes; the image is
# unchanged afterwards and no temporary file is left behind.
. "$(dirname "$0")/common.sh"
_require_driver qcow2
export TMPDIR="$TEST_DIR/tmp"
mkdir -p "$TMPDIR"
truncate -s 1M t.raw
_qemu_io -s -f raw -c 'write -P 1 0 4k' -c 'read -P 1 0 4k' -c 'length' t.raw
_qemu_io -f raw -c 'read -P 0 0 4k' t.raw
_qemu_io -c 'open -s -o driver=raw t.raw' -c 'write -P 2 4k 4k' -c 'read -P 2 4k 4k' -c 'close' -c 'open -o driver=raw t.raw' -c 'read -P 0 4k 4k'
_qemu_io -s -r -f raw -c 'write -P 1 0 4k' t.raw
ls "$TMPDIR"
