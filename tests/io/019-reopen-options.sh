# reopen -o: options the core can change, unchanged options, and QEMU's
# refusals (named as the owning node calls them).
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
for c in "reopen -o file.align=4096" "reopen -o cache.direct=on" "reopen -o cache.no-flush=on" \
         "reopen -o bogus=1" "reopen -o driver=qcow2" "reopen -o file.filename=x" \
         "reopen -o file.filename=t.raw" "reopen -o discard=unmap" "reopen -o detect-zeroes=on" \
         "reopen -o read-only=x" "reopen -o cache.direct=x" "reopen -r -o read-only=off" \
         "reopen -c none -o cache.direct=on" "reopen -o read-only=off"; do
    echo "== $c"
    _qemu_io -f raw -c "$c" -c 'write 0 1' -c 'flush' t.raw
done
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.align=512 t.raw' -c 'reopen -o file.align=4096' -c 'reopen -o file.align=512' -c 'reopen -o file.config=x' -c 'reopen -o file.inject-error.0.event=none'
