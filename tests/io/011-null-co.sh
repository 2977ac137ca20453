# The null-co driver: reads leave the buffer alone, writes vanish.
. "$(dirname "$0")/common.sh"
_qemu_io -f null-co -c info -c length -c map -c "alloc 0 1k" -c "read -v 0 20" -c "write -P 1 0 4k" -c "read -P 0xab 0 4k" -c "aio_write 0 4k" -c "aio_flush" -c "aio_read -P 0xab 0 4k" -c "aio_flush" -c "discard 0 4k" -c flush null-co://
_qemu_io --image-opts driver=null-co,size=4096,read-zeroes=on -c length -c "read -P 0 0 4k" -c map -c "read 4k 1"
_qemu_io -f null-co x
