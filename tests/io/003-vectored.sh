# readv/writev with several lengths, including a TAB-prefixed length token.
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
_qemu_io -f raw -c "writev -P 3 1536 512 512" -c "readv -P 3 1536 512 512" -c "readv -P 3 1536 1k" -c "writev 64k 4k 4k 4k" -c "readv -P 0xcd 64k 8k 4k" -c "readv -P 4 64k 4k" t.raw
_qemu_io -f raw -c "$(printf 'writev -P 0xb 128k 8k 8k \t8k 8k')" -c "readv -P 0xb 128k 32k" t.raw
_qemu_io -f raw -c "readv 0" -c "readv 0 12x" -c "readv 0 3G" -c "readv 0 2G 2G" -c "writev -f -q 0 1k" -c "readv 1M 1" t.raw
