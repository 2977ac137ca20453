# Number arguments parsed as qemu_strtosz: suffixes, hex, fractions, errors.
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
for n in 0 1k 1K 1.5k 1.5 1. 1.k 0x10 0x1k 0X1f -1 +5 12x k 9E 8E 7E 0x8000000000000000 18446744073709551616 1e3 .5k 1b 1B 0x 010 1.0 0.5b 1.5e3k 1.0000001k 0.5M 1.9999999999k; do
    echo "[$n]"
    _qemu_io -f raw -c "alloc $n 0" t.raw
done
