# read/write with patterns on a raw file: verification, failures, -q, exit status.
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
_qemu_io -f raw -c "write -P 0x5a 0 4k" -c "read -P 0x5a 0 4k" -c "w 4k 4k" -c "r -P 0xcd 4k 4k" t.raw
echo "== verification failure (exit 1, report still printed)"
_qemu_io -f raw -c "read -P 1 0 512" -c "read -q -P 0x5a 0 512" t.raw
echo "== -s/-l window"
_qemu_io -f raw -c "read -P 0x5a -s 512 -l 1k 0 4k" -c "read -P 0x5a -s 3k -l 2k 2k 4k" -c "read -P 0 -s 600 0 512" -c "read -s 1 0 512" t.raw
echo "== quiet and zero writes"
_qemu_io -f raw -c "write -q -P 7 8k 1k" -c "read -q -P 7 8k 1k" -c "write -z 8k 512" -c "read -P 0 8k 512" -c "read -P 7 8704 512" -c "write -z -u 9k 512" -c "write -f 10k 1" -c "read 0 0" t.raw
echo "== beyond the end"
_qemu_io -f raw -c "read 1M 1" -c "write 1020k 8k" -c "read 1020k 4k" t.raw
echo "== option errors"
_qemu_io -f raw -c "read -P 0x1ff 0 512" -c "read -P -1 0 1" -c "write -n 0 512" -c "write -u 0 512" -c "write -z -P 1 0 512" -c "write -b -z 0 512" -c "write -f -c 0 512" -c "write -c 1 512" -c "read -b 1 512" -c "read 0 3G" -c "write 0 3G" -c "read 0 1 2" -c "write 0" t.raw
