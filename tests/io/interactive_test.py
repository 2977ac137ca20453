#!/usr/bin/env python3
"""coblock-io by hand: runs it on a pseudo-terminal (as qemu-io, through a
symlink) and types like a person would: a command completed with TAB, the
same command recalled with the up arrow, an edited line, and ^D. Checks the
prompts and the command output that come back.
  interactive_test.py COBLOCK_IO_BINARY"""
import os
import pty
import select
import sys
import tempfile
import time

PROMPT = b"qemu-io> "


def read_until(fd, needle, count=1, timeout=10.0):
    """Reads from the terminal until `needle` was seen `count` times."""
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(needle) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {needle!r} x{count}; got {data!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def main():
    binary = os.path.realpath(sys.argv[1])
    with tempfile.TemporaryDirectory() as work:
        link = os.path.join(work, "qemu-io")
        os.symlink(binary, link)
        image = os.path.join(work, "t.raw")
        with open(image, "wb") as f:
            f.truncate(1 << 20)
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(link, [link, "-f", "raw", image])
        out = read_until(fd, PROMPT)
        # TAB completes "wri" to "write" (unique), then the line runs.
        os.write(fd, b"wri\t -P 5 0 512\r")
        out = read_until(fd, PROMPT)
        assert b"wrote 512/512 bytes at offset 0" in out, out
        # "rea" is the prefix of read and readv: TAB completes to "read".
        os.write(fd, b"rea\t -P 5 0 512\r")
        out = read_until(fd, PROMPT)
        assert b"read 512/512 bytes at offset 0" in out, out
        assert b"Pattern verification failed" not in out, out
        # Up arrow recalls the read; edit its end (backspace) to read 1 KiB
        # at offset 0: bytes 512.. were never written, so verification fails.
        os.write(fd, b"\x1b[A\x7f\x7f\x7f1k\r")
        out = read_until(fd, PROMPT)
        assert b"Pattern verification failed at offset 0, 1024 bytes" in out, out
        assert b"read 1024/1024 bytes at offset 0" in out, out
        # Up arrow three times: back to the write, then an unknown command.
        os.write(fd, b"\x1b[A\x1b[A\x1b[A\r")
        out = read_until(fd, PROMPT)
        assert b"wrote 512/512 bytes at offset 0" in out, out
        os.write(fd, b"bogus\r")
        out = read_until(fd, PROMPT)
        assert b'command "bogus" not found' in out, out
        # ^D ends the session; a failed command makes the exit status 1.
        os.write(fd, b"\x04")
        try:
            read_until(fd, b"\n\n", timeout=5)  # drain until EOF
        except AssertionError:
            pass
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1, status
    print("ok: completion, history, editing and ^D on a terminal")


if __name__ == "__main__":
    main()
