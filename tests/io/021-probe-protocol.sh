# Opening by protocol prefix or json: file subtree probes the format on top
# (blkdebug::img, null-co://), unknown protocols fail with QEMU's message.
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
_qemu_io blkdebug::t.raw -c 'read 0 512' -c 'info'
_qemu_io -r blkdebug::t.raw -c 'read 0 512'
_qemu_io null-co:// -c 'read 0 512' -c 'info'
_qemu_io -r null-co:// -c 'read 0 512'
_qemu_io --image-opts file.driver=null-co -c 'read 0 512'
_qemu_io 'json:{"file":{"driver":"file","filename":"t.raw"}}' -c 'read 0 512'
_qemu_io 'json:{"file":{"driver":"blkdebug","image":{"driver":"file","filename":"t.raw"}}}' -c 'read 0 512'
_qemu_io 'json:{"driver":"blkdebug","image":{"driver":"file","filename":"t.raw"}}' -c 'read 0 512' -c 'info'
_qemu_io x://foo -c 'read 0 512'
_qemu_io -f raw x://foo
_qemu_io -c 'open x:y'
_qemu_io -f raw ./x:y
_qemu_io --image-opts driver=raw,file.driver=file,file.filename=x:y
