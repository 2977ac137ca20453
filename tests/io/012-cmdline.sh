# The command line: getopt_long permutation, --opt val / --opt=val, errors.
. "$(dirname "$0")/common.sh"
truncate -s 64k t.raw
_qemu_io -h
_qemu_io -x
_qemu_io a b
_qemu_io -f
_qemu_io --cache
_qemu_io -t bogus t.raw
_qemu_io --cache=bogus t.raw
_qemu_io -i bogus t.raw
_qemu_io --aio=bogus t.raw
_qemu_io -d bogus t.raw
_qemu_io --bogus t.raw
echo "== permutation and long options"
_qemu_io t.raw -f raw -c "read -q 0 1" -c length
_qemu_io --format raw --cmd "read -q 0 1" --cmd=length --cache=writeback --aio threads t.raw
_qemu_io --format=raw -t none -c "write -P 3 0 4k" -c "read -P 3 0 4k" t.raw
_qemu_io --format=raw -n -c "write -q -P 4 0 4k" -c "read -q -P 4 0 4k" t.raw
_qemu_io -f raw -k -t none -c "read -q -P 4 0 4k" t.raw
_qemu_io -f raw -d unmap -U -r -c "read -q -P 4 0 4k" t.raw
_qemu_io -f raw -m -c "write -q -P 5 1 513" -c "read -P 5 1 513" t.raw
_qemu_io --read-only --format raw -c "write 0 1" t.raw
