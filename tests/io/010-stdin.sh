# Commands from stdin: a prompt before each line and at EOF, stdout flushed
# at every prompt (so stderr lines interleave in order).
. "$(dirname "$0")/common.sh"
truncate -s 64k t.raw
printf 'write -q -P 1 0 512\nbogus\nread -q -P 1 0 512\nread -q -P 2 0 512\n' | "$QEMU_IO" -f raw t.raw 2>&1 | od -c
echo "exit status: ${PIPESTATUS[1]}"
printf 'write -P 1 0 512\nbogus\nread -P 1 0 512\nquit\nread 0 1\n' | _qemu_io -f raw t.raw
printf 'aio_write -P 2 0 4k\naio_flush\nread -P 2 0 4k\n' | _qemu_io -f raw t.raw
echo "== -c given: stdin is not read"
echo "read 0 512" | _qemu_io -f raw -c "length" t.raw
echo "== no image, commands from stdin"
printf 'open -o driver=raw t.raw\nlength\nclose\nlength\n' | _qemu_io
