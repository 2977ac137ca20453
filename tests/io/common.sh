# Sourced by every golden script: the filters of QEMU's iotests
# (common.filter _filter_qemu_io) and a scratch directory per test.
# QEMU_IO names the binary under test (a symlink called qemu-io, so the
# program name in prompts and messages is "qemu-io").

_filter_qemu_io() {
    sed -e 's/\r//g' \
        -e "s/[0-9]* ops\; [0-9/:. sec]* ([0-9/.inf]* [EPTGMKiBbytes]*\/sec and [0-9/.inf]* ops\/sec)/X ops\; XX:XX:XX.X (XXX YYY\/sec and XXX ops\/sec)/" \
        -e "s/: line [0-9][0-9]*:  *[0-9][0-9]*\( Aborted\| Killed\) \{2,\}/:\1 /" \
        -e "s/qemu-io> //g"
}

# -C prints "bytes,ops,time,bytes/s,ops/s": keep the first two fields.
_filter_machine() {
    sed -e 's/^\([0-9]*,[0-9]*\),[0-9]*:[0-9]*:[0-9.]*,[0-9.inf]*,[0-9.inf]*$/\1,TIME,RATE,RATE/'
}

# Runs qemu-io with stdout and stderr in one pipe (their interleaving is
# part of the expected output) and prints the exit status.
_qemu_io() {
    "$QEMU_IO" "$@" 2>&1 | _filter_qemu_io
    echo "exit status: ${PIPESTATUS[0]}"
}

cd "$TEST_DIR" || exit 1

# Prints "SKIP: ..." and exits when the binary under test has no driver
# named $1 (run.sh then reports the test as skipped).
_require_driver() {
    if "$QEMU_IO" -c "open -o driver=$1 /nonexistent" 2>&1 | grep -q "Unknown driver"; then
        echo "SKIP: driver $1 not available"
        exit 0
    fi
}
