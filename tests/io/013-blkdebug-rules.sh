# blkdebug over raw: active list, once, first match, sector and iotype
# (blkdebug.md §14 C, D, E), state machine, set-state races.
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
cat > act.conf <<'CONF'
[inject-error]
event = "none"
iotype = "read"
errno = "5"

[inject-error]
event = "write_aio"
iotype = "write"
errno = "28"
once = "on"
CONF
_qemu_io --cache writeback -f raw -c 'read 0 512' -c 'write 0 512' -c 'read 0 512' -c 'write 0 512' blkdebug:act.conf:t.raw

cat > two.conf <<'CONF'
[inject-error]
event = "write_aio"
errno = "5"
sector = "0"

[inject-error]
event = "write_aio"
errno = "28"
CONF
_qemu_io --cache writeback -f raw -c 'write 0 512' -c 'write 512 512' -c 'write 0 512' blkdebug:two.conf:t.raw
cat > two-swapped.conf <<'CONF'
[inject-error]
event = "write_aio"
errno = "28"

[inject-error]
event = "write_aio"
errno = "5"
sector = "0"
CONF
_qemu_io --cache writeback -f raw -c 'write 0 512' -c 'write 512 512' -c 'write 0 512' blkdebug:two-swapped.conf:t.raw

cat > s8.conf <<'CONF'
[inject-error]
event = "none"
sector = "8"
CONF
_qemu_io --cache writeback -f raw -c 'write 0 4k' -c 'write 4k 4k' -c 'read 3584 1k' -c 'read 4608 512' -c 'flush' -c 'write -z 4k 4k' -c 'discard 4k 4k' blkdebug:s8.conf:t.raw

cat > s1.conf <<'CONF'
[inject-error]
event = "none"
sector = "1"
CONF
_qemu_io --cache writeback -f raw -c 'read 513 511' -c 'read 0 513' -c 'read 512 1' -c 'read 0 512' blkdebug:s1.conf:t.raw

cat > bs.conf <<'CONF'
[inject-error]
event = "none"
iotype = "block-status"
CONF
_qemu_io --cache writeback -f raw -c 'read 0 512' -c 'map' blkdebug:bs.conf:t.raw

cat > fl.conf <<'CONF'
[inject-error]
event = "none"
iotype = "flush"
CONF
_qemu_io --cache writeback -f raw -c 'flush' blkdebug:fl.conf:t.raw
_qemu_io --cache writeback -f raw -c 'write 0 512' -c 'flush' blkdebug:fl.conf:t.raw

cat > sm.conf <<'CONF'
[set-state]
event = "write_aio"
state = "1"
new_state = "2"

[inject-error]
event = "write_aio"
state = "2"
errno = "5"
CONF
_qemu_io --cache writeback -f raw -c 'write 0 512' -c 'write 512 512' -c 'read 0 512' -c 'write 0 512' blkdebug:sm.conf:t.raw

# Competing set-state on the same event: the first-defined one wins.
cat > race.conf <<'CONF'
[set-state]
event = "none"
new_state = "2"

[set-state]
event = "none"
new_state = "3"

[inject-error]
event = "write_aio"
state = "2"
errno = "28"

[inject-error]
event = "write_aio"
state = "3"
errno = "5"
CONF
_qemu_io --cache writeback -f raw -c 'write 0 512' blkdebug:race.conf:t.raw

# errno 0 lets the request through and still blocks later rules; unknown
# errno values; immediately.
cat > e0.conf <<'CONF'
[inject-error]
event = "none"
errno = "0"
sector = "0"

[inject-error]
event = "none"
errno = "1000"
immediately = "on"
CONF
_qemu_io --cache writeback -f raw -c 'read 0 512' -c 'read 512 512' blkdebug:e0.conf:t.raw

# Comments, empty lines, last value wins, octal/hex numbers.
cat > misc.conf <<'CONF'
# a comment

[inject-error]
event = "write_aio"
event = "read_aio"
errno = "034"
sector = "0x1"
CONF
_qemu_io --cache writeback -f raw -c 'read 0 512' -c 'read 512 512' -c 'write 512 512' blkdebug:misc.conf:t.raw
