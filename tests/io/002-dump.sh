# read -v hexdump and -C machine-readable reports.
. "$(dirname "$0")/common.sh"
truncate -s 64k t.raw
_qemu_io -f raw -c "write -P 0x41 0 20" -c "write -P 0x7e 20 12" -c "read -v 0 40" -c "read -v 5 1" -c "readv -v 16 8 8" t.raw
_qemu_io -f raw -c "read -C 0 4k" -c "write -C 0 4k" -c "discard -C 0 4k" -c "readv -C 0 1k 1k" -c "writev -C 0 1k" t.raw | _filter_machine
