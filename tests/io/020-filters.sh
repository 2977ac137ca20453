# The copy-on-read and compress filters (driver=copy-on-read / compress over
# a qcow2 image): copying from the backing file on read, compressed writes
# and what QEMU refuses. Images are made with qemu-img.
. "$(dirname "$0")/common.sh"
if ! command -v qemu-img > /dev/null; then
    echo "SKIP: qemu-img not installed"
    exit 0
fi
qemu-img create -q -f qcow2 base.qcow2 4M
"$QEMU_IO" -f qcow2 -c 'write -q -P 7 0 1M' base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-img create -q -f qcow2 c.qcow2 4M
truncate -s 4M t.raw
echo "== copy-on-read"
_qemu_io --image-opts driver=copy-on-read,file.driver=qcow2,file.file.filename=top.qcow2 \
    -c 'map' -c 'read -P 7 0 64k' -c 'read -P 7 100k 3k' -c 'map' -c 'info' \
    -c 'write -P 3 2M 4k' -c 'write -c 3M 64k' -c 'map' -c 'truncate 8M' -c 'length'
_qemu_io -f qcow2 -c 'map' top.qcow2
_qemu_io -c 'open -r -o driver=copy-on-read,file.driver=qcow2 top.qcow2' -c 'read 0 512'
_qemu_io 'json:{"driver":"copy-on-read","file":{"driver":"qcow2","file":{"driver":"file","filename":"top.qcow2"}}}' -c 'read -P 7 512k 4k'
_qemu_io --image-opts driver=copy-on-read,file.driver=qcow2,file.file.filename=top.qcow2,bottom=nonexist -c 'read 0 1'
_qemu_io --image-opts driver=copy-on-read,file.driver=qcow2,file.file.filename=top.qcow2,foo=bar -c 'read 0 1'
echo "== compress"
_qemu_io --image-opts driver=compress,file.driver=qcow2,file.file.filename=c.qcow2 \
    -c 'write -P 1 0 64k' -c 'write -P 1 1k 4k' -c 'write -z 128k 64k' -c 'read -P 1 0 64k' \
    -c 'map' -c 'info' -c 'write -c 256k 64k' -c 'read -P 0 128k 64k' -c 'truncate 8M' -c 'length'
_qemu_io -c 'open -o driver=compress,file.driver=qcow2 c.qcow2' -c 'write -P 5 512k 64k' -c 'read -P 5 512k 64k' -c 'alloc 512k 64k'
_qemu_io --image-opts driver=compress,file.driver=raw,file.file.filename=t.raw -c 'write 0 64k'
_qemu_io --image-opts driver=compress,file.driver=file,file.filename=t.raw -c 'write 0 64k'
echo "== write -c on raw"
_qemu_io -f raw -c 'write -c 0 64k' t.raw
