# blkdebug breakpoints and the break/remove_break/resume/wait_break
# commands (blkdebug.md §8).
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
_qemu_io --cache writeback -f raw -c 'break write_aio A' -c 'aio_write -P 1 0 512' -c 'wait_break A' -c 'resume A' -c 'aio_flush' -c 'read -P 1 0 512' blkdebug::t.raw
_qemu_io --cache writeback -f raw -c 'break write_aio A' -c 'aio_write -P 1 0 512' -c 'wait_break A' -c 'break write_aio A' -c 'aio_write -P 2 512 512' -c 'wait_break A' -c 'resume A' -c 'sleep 100' -c 'resume A' -c 'aio_flush' blkdebug::t.raw
_qemu_io --cache writeback -f raw -c 'break write_aio A' -c 'aio_write 0 512' -c 'wait_break A' -c 'remove_break A' -c 'aio_flush' blkdebug::t.raw
_qemu_io --cache writeback -f raw -c 'break write_aio A' -c 'remove_break A' -c 'write 0 512' blkdebug::t.raw
_qemu_io -f raw -c 'break write_aio A' t.raw
_qemu_io -f raw -c 'remove_break A' -c 'resume A' t.raw
_qemu_io -f raw -c 'break bogus A' blkdebug::t.raw
_qemu_io -f raw -c 'resume A' -c 'remove_break A' blkdebug::t.raw
_qemu_io -f raw -c 'break' -c 'break a b c' -c 'resume' -c 'wait_break' -c 'remove_break' blkdebug::t.raw
_qemu_io -c 'break write_aio A' -c 'resume A'
_qemu_io --cache writeback -f raw -c 'break pwritev A' -c 'break pwritev B' -c 'aio_write 0 512' -c 'wait_break B' -c 'resume B' -c 'resume A' -c 'aio_flush' blkdebug::t.raw
_qemu_io --cache writeback -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=4k' -c 'break pwritev_rmw_after_head A' -c 'aio_write -P 10 512 512' -c 'wait_break A' -c 'resume A' -c 'aio_flush' -c 'read -P 10 512 512'
printf 'open -o driver=raw,file.driver=blkdebug t.raw\nbreak read_aio 0\naio_read 0 1k\nwait_break 0\nresume 0\naio_flush\n' | "$QEMU_IO" 2>&1 | _filter_qemu_io; echo
# Events the generic layer raises: an error armed by each hits the next
# request. (Armed before an RMW padding read, QEMU 7.2 ignores the failed
# read and writes anyway; coblock fails the write, so those are not here.)
for ev in pwritev pwritev_done pwritev_zero flush_to_os flush_to_disk read_aio write_aio; do
    printf '[inject-error]\nevent = "%s"\nerrno = "28"\nonce = "on"\n' $ev > ev.conf
    for cache in writeback writethrough; do
        echo "== $ev $cache"
        _qemu_io --cache $cache -f raw -c 'write 0 4k' -c 'write -z 4k 4k' -c 'flush' -c 'read 0 4k' -c 'write 0 4k' -c 'flush' blkdebug:ev.conf:t.raw
    done
done
for ev in pwritev_rmw_after_head pwritev_rmw_after_tail pwritev; do
    printf '[inject-error]\nevent = "%s"\nerrno = "28"\nonce = "on"\n' $ev > ev.conf
    echo "== $ev"
    _qemu_io --cache writeback -c "open -o driver=raw,file.driver=blkdebug,file.config=ev.conf,file.image.filename=t.raw,file.align=4k" -c 'write 512 512' -c 'write 0 4k' -c 'write 4k 1k' -c 'write 6k 4k'
done
