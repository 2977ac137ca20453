# --object secret (accepted, errors as QEMU) and -C copy-on-read on a
# format without backing files (nothing to copy).
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
printf 'pw' > pw.txt
for o in "secret,id=s0,data=abc" "secret,id=s0" "secret,data=x" "bogus,id=x" \
         "secret,id=s0,data=a,file=pw.txt" "secret,id=s0,file=nonexist" "secret,id=s0,file=pw.txt" \
         "secret,id=s0,data=abc,format=base64" "secret,id=s0,data=abc,format=bogus" \
         "secret,id=s0,data=abc,foo=1" "help" "secret,help" "" "secret,id=1x,data=a" "id=s0" \
         "secret,id=s0,data" "secret,id=s0,data=a,,b"; do
    echo "== --object '$o'"
    _qemu_io --object "$o" -f raw -c 'read 0 512' t.raw
done
_qemu_io --object secret,id=a,data=x --object secret,id=a,data=y -f raw -c 'read 0 512' t.raw
_qemu_io -C -f raw -c 'write -P 7 0 4k' -c 'read -P 7 0 4k' -c 'read -P 0 4k 4k' t.raw
_qemu_io -c 'open -C -o driver=raw t.raw' -c 'read -P 7 0 4k' -c 'read -P 0 8k 4k'
_qemu_io -c 'open -C -o driver=blkdebug,image.driver=raw,image.file.filename=t.raw' -c 'read -P 7 0 4k'
