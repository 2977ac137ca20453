# The dispatcher: unknown commands, argument counts, getopt errors, help.
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
_qemu_io -f raw -c bogus -c "read 0" -c "read -x 0 1" -c "r -x 0 1" -c "close x" -c "alloc" -c "alloc 1 2 3" -c "truncate" -c "map x" -c "length 1" -c "help bogus" -c "help read" -c "help aio_write" -c "help sigraise" -c "? w" -c "help open" t.raw
_qemu_io -c help
_qemu_io -f raw -c "sleep 10" -c "sleep x" -c "sleep -1" -c "sigraise 1000" -c "sigraise x" -c "break pwritev A" -c "remove_break A" -c "resume A" -c "quit" -c "read 0 1" t.raw
_qemu_io -f raw -c "q now" -c "read 0 1" t.raw
_qemu_io -c "read 0 512" -c "sleep 1" -c "info" -c "close" -c "quit"
_qemu_io -f raw -c "" -c "   " -c "read  0  512" t.raw
