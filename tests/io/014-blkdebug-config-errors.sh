# blkdebug config-file syntax and semantic errors (blkdebug.md §2.1, §3).
. "$(dirname "$0")/common.sh"
truncate -s 1M t.raw
try() {
    printf "$1" > c.conf
    _qemu_io -f raw -c 'read 0 512' blkdebug:c.conf:t.raw
}
try '[inject-error]\nevent = "foo"\n'
try '[inject-error]\nerrno = "5"\n'
try '   \n'
try 'event = "none"\n'
try '[inject-error\nevent = "none"\n'
try '[INJECT-ERROR]\nevent = "none"\n'
try '[inject-error]\nEVENT = "none"\n'
try '[inject-error]\nerrno="28"\n'
try '[inject-error]\nevent = none\n'
try '[inject-error]\nevent = "none"\nerrno = "x"\n'
try '[inject-error]\nevent = "none"\nerrno = "99999999999999999999"\n'
try '[inject-error]\nevent = "none"\nsector = "1k"\n'
try '[inject-error]\nevent = "none"\nonce = "1"\n'
try '[inject-error]\nevent = "none"\niotype = "READ"\n'
try '[inject-error]\nevent = "l1_grow.alloc_table"\n'
try '[set-state]\nevent = "none"\nerrno = "5"\n'
try '[set-state]\nstate = "1"\n'
try '[inject-error "1x"]\nevent = "none"\n'
try '[inject-error "a"]\nevent = "none"\n[inject-error "a"]\nevent = "none"\n'
try '\t[inject-error]\nevent = "none"\n'
try '; x\n'
try ''
try '# only a comment\n\n'
try '[inject-error]\nevent = "none"\nerrno = "4294967301"\n'
_qemu_io -f raw -c 'read 0 512' blkdebug:nonexist.conf:t.raw
mkdir d
_qemu_io -f raw -c 'read 0 512' blkdebug:d:t.raw
_qemu_io -f raw -c 'read 0 512' blkdebug:t.raw
_qemu_io -f raw -c 'read 0 512' blkdebug:
_qemu_io -f raw -c 'read 0 512' blkdebug::
_qemu_io -f raw -c 'read 0 512' blkdebug::nonexist.raw
