# open/close/reopen and opening from the command line: option strings,
# json: filenames, errors.
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
_qemu_io -c "open -o driver=raw t.raw" -c "open t.raw" -c "read 0 512" -c close -c close -c "open -o driver=raw,file.filename=t.raw" -c "map" -c "c" -c "open -f raw t.raw" -c "open -o driver=raw,file.filename=t.raw x y" -c "open" -c "open -t bogus t.raw" -c "open -d bogus t.raw" -c "open -i bogus t.raw" -c "length"
_qemu_io -c "open -r -o driver=raw t.raw" -c "write 0 1" -c "discard 0 1" -c "truncate 0" -c "writev 0 1" -c "aio_write 0 1" -c "read 0 1"
_qemu_io -f raw -c "reopen -r" -c "write 0 512" -c "reopen -w" -c "write -q 0 512" -c "reopen -r -w" -c "reopen -c bogus" -c "reopen x" -c "reopen -c none" t.raw
_qemu_io -r -f raw -c "write 0 1" -c "read -P 0xcd 0 1" t.raw
_qemu_io --image-opts driver=raw,file.filename=t.raw -c "read -P 0xcd 0 512" -c "info"
_qemu_io -f raw --image-opts driver=raw,file.filename=t.raw -c "read 0 512"
_qemu_io --image-opts driver=raw,file.filename=t.raw -c close -c "open -o driver=raw t.raw"
_qemu_io 'json:{"driver":"raw","file":{"driver":"file","filename":"t.raw"}}' -c "read 0 512"
_qemu_io -f raw nonexist.raw
_qemu_io nonexist.raw
_qemu_io -c "open -o driver=raw nonexist.raw" -c "read 0 1"
