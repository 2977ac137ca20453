# -C and the copy-on-read filter copy whole clusters of the top image (its
# cluster size, not the request's), never overwrite what the top already
# holds, and copy zero runs as zero writes: qemu-img map of the top image
# after the reads shows what was copied, and how.
. "$(dirname "$0")/common.sh"
if ! command -v qemu-img > /dev/null; then
    echo "SKIP: qemu-img not installed"
    exit 0
fi
make_images() {
    rm -f base.qcow2 top.qcow2
    qemu-img create -q -f qcow2 base.qcow2 4M
    "$QEMU_IO" -f qcow2 -c 'write -q -P 7 0 1M' -c 'write -q -P 8 2M 64k' -c 'write -q -z 3M 64k' base.qcow2
    qemu-img create -q -f qcow2 -o cluster_size=16k -b base.qcow2 -F qcow2 top.qcow2
    "$QEMU_IO" -f qcow2 -c 'write -q -P 9 20k 4k' top.qcow2
}
show_map() {
    qemu-img map --output=json top.qcow2 | sed 's/, "offset": [0-9]*//'
}
make_images
_qemu_io -C -f qcow2 -c 'read -P 7 1000 3000' -c 'read -P 7 10k 10k' -c 'read -P 9 20k 4k' \
    -c 'read 900k 200k' -c 'read -P 8 2M 8k' -c 'read -P 0 3M 20k' -c 'read -P 0 3800k 10k' top.qcow2
show_map
make_images
_qemu_io --image-opts driver=copy-on-read,file.driver=qcow2,file.file.filename=top.qcow2 \
    -c 'read 1000 3000' -c 'read 3M 64k' -c 'read -P 9 20k 4k'
show_map
