# reopen switches O_DIRECT on the image file for cache.direct=on and -c
# none (seen in /proc/PID/fdinfo between commands); unchanged blkdebug
# keys are accepted; wait_break without a blkdebug node waits forever.
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
odirect() {  # prints on/off for the descriptor of t.raw in process $1
    for fd in /proc/$1/fd/*; do
        if [ "$(readlink "$fd")" = "$TEST_DIR/t.raw" ]; then
            flags=$(awk '/^flags/ {print $2}' "/proc/$1/fdinfo/${fd##*/}")
            if [ $((8#$flags & 8#40000)) -ne 0 ]; then echo "O_DIRECT on"; else echo "O_DIRECT off"; fi
        fi
    done
}
# Commands go in one at a time through a fifo; the next prompt says the
# reopen is done, then the script looks at the descriptor.
mkfifo cmds
"$QEMU_IO" -f raw t.raw < cmds > session.txt 2>&1 &
pid=$!
exec 3> cmds
prompts() { grep -o 'qemu-io> ' session.txt | wc -l; }
until [ "$(prompts)" -ge 1 ]; do sleep 0.01; done
odirect $pid
for c in 'reopen -o cache.direct=on' 'reopen -c writeback' 'reopen -c none' 'reopen -o cache.direct=off'; do
    n=$(prompts)
    echo "$c" >&3
    until [ "$(prompts)" -gt "$n" ]; do sleep 0.01; done
    echo "after $c: $(odirect $pid)"
done
exec 3>&-
wait $pid
echo "exit status: $?"
_filter_qemu_io < session.txt
_qemu_io -c 'open -o driver=blkdebug,image.driver=file,image.filename=t.raw,inject-error.0.event=read_aio,inject-error.0.once=on' \
    -c 'reopen -o inject-error.0.event=read_aio' -c 'reopen -o inject-error.0.once=on' \
    -c 'reopen -o inject-error.0.once=off' -c 'reopen -o inject-error.1.event=read_aio' -c 'read 0 512'
timeout 1 "$QEMU_IO" -f raw -c 'wait_break A' t.raw
echo "exit status: $?"
