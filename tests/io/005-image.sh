# discard, truncate, length, info, map and alloc on a sparse raw file.
. "$(dirname "$0")/common.sh"
truncate -s 4M t.raw
_qemu_io -f raw -c "write -P 1 0 4k" -c "write -P 2 2M 64k" -c "map" -c "alloc 0 8k" -c "alloc 1M" -c "a 3M 2M" -c "alloc 4M" -c "alloc 7E" -c info -c length -c l -c i t.raw
_qemu_io -f raw -c "discard 0 64k" -c "d -q 64k 64k" -c "discard 4M 1" -c "discard 0 3G" -c "discard 0" t.raw
_qemu_io -f raw -c "truncate 8M" -c length -c map -c "t 1M" -c length -c "truncate 1.5M" -c length -c "truncate -m bogus 1M" -c "truncate -m full x" -c "truncate 12x" -c "flush" -c "f" t.raw
ls -l t.raw | awk '{print $5}'
