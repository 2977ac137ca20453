# aio_read/aio_write report from their completion; aio_flush drains.
# (Requests are never left in flight together: the order in which two
# concurrent completions print depends on thread scheduling.)
. "$(dirname "$0")/common.sh"
truncate -s 4M t.raw
_qemu_io -f raw -c "aio_write -P 3 1M 4k" -c "aio_flush" -c "aio_read -P 3 1M 4k" -c "aio_flush" -c "aio_read -v 1M 8" -c "aio_flush" -c "aio_read -P 4 1M 512" -c "aio_flush" -c "aio_write -q 0 1k" -c "aio_read -q -P 0xcd 0 1k" -c "aio_flush" t.raw
_qemu_io -f raw -c "aio_write -z 0 512 512" -c "aio_write -u 0 512" -c "aio_read 0" -c "aio_write 0 12x" -c "aio_read -P 300 0 1" -c "aio_write -i 0 1" -c "aio_read -i 0 1" -c "aio_read 4M 512" -c "aio_flush" -c "aio_write 4M 512" -c "aio_flush" t.raw
echo "== pending requests complete before exit"
_qemu_io -f raw -c "aio_write -P 9 2M 8k" t.raw
_qemu_io -f raw -c "read -P 9 2M 8k" -c "read -P 0 3M 8k" t.raw
