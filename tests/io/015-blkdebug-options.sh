# blkdebug from options: inline rules, their errors, limits (blkdebug.md
# §2.2, §9, §14 F/G).
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
_qemu_io --image-opts driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.inject-error.0.event=write_aio,file.inject-error.0.once=on -c 'write 0 512' -c 'write 0 512'
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.inject-error.event=read_aio t.raw" -c "read 0 512"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.inject-error.0.event=read_aio,file.inject-error.1.event=write_aio,file.inject-error.1.errno=28 t.raw" -c "read 0 512" -c "write 0 512"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.inject-error.0.foo=1 t.raw"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.inject-error.0.event=write_aio,file.inject-error.foo=1 t.raw"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.inject-error.1.event=write_aio t.raw"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.inject-error.0=write_aio t.raw"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.inject-error.event=write_aio,file.inject-error.0.event=read_aio t.raw"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.take-child-perms.0=bogus t.raw"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.set-state.0.event=none,file.set-state.0.new_state=2,file.inject-error.0.event=read_aio,file.inject-error.0.state=2 t.raw" -c "read 0 512"
_qemu_io -c "open -o driver=raw,file.driver=blkdebug,file.bogus=1 t.raw"
_qemu_io -c "open -o driver=blkdebug"
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=1000' -c 'read 0 4k'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=3'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=2147483648'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=x'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.max-transfer=2147483647'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=512,file.max-transfer=1000'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=4096,file.max-transfer=6144'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=512,file.opt-write-zero=1024,file.max-write-zero=1536'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=512,file.max-discard=1000'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=4096,file.opt-write-zero=512'
_qemu_io -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.opt-discard=2147483647'
_qemu_io --cache writeback -c 'open -o driver=raw,file.driver=blkdebug,file.image.filename=t.raw,file.align=4k,file.max-transfer=32k' -c 'write -P 33 1000 128k' -c 'read -P 33 1000 128k' -c 'write -z 1000 64k' -c 'read -P 0 1000 64k' -c 'discard 0 64k'
_qemu_io --cache writeback -c 'open -o driver=blkdebug,image.driver=raw,image.file.filename=t.raw,align=512,max-transfer=64k,opt-write-zero=64k' -c 'write -z 1000 128k' -c 'read -P 0 1000 128k' -c 'info'
_qemu_io --cache writeback -c 'open -o driver=blkdebug,image.driver=raw,image.file.filename=t.raw,align=512,opt-discard=64k,max-discard=64k' -c 'discard 1000 128k'
# Requests through a blkdebug root: write -c is not supported.
_qemu_io --cache writeback -c 'open -o driver=blkdebug,image.driver=raw,image.file.filename=t.raw' -c 'write -c 0 64k' -c 'length'
