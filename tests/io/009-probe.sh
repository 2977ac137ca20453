# Without -f the format is probed; raw is guessed with a warning on stderr
# (read-write opens only).
. "$(dirname "$0")/common.sh"
truncate -s 64k t.raw
_qemu_io -c "write -P 1 0 512" -c "read -P 1 0 512" -c info t.raw
_qemu_io -c "open t.raw" -c "read -P 1 0 512"
_qemu_io -r -c "read -P 1 0 512" t.raw
