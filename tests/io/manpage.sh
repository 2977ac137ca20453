#!/bin/bash
# The man page renders without groff warnings and documents every command
# coblock-io has (from `help`) and every long option (from -h).
#   manpage.sh COBLOCK_IO_BINARY MAN_PAGE
set -u
binary=$1
page=$2
if ! command -v groff > /dev/null; then
    echo "SKIP: groff not installed, cannot render $page"
    exit 77
fi
failed=0
warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
if [ -n "$warnings" ]; then
    echo "groff warnings:"
    echo "$warnings"
    failed=1
fi
for cmd in $("$binary" -c help | sed -n 's/^\([a-z_]*\) .*/\1/p'); do
    if ! grep -q "^\.B $cmd\b" "$page"; then
        echo "command '$cmd' is not documented in $page"
        failed=1
    fi
done
for opt in $("$binary" -h | grep -o -- '--[a-z-]*' | sort -u); do
    if ! grep -q -- "$(echo "$opt" | sed 's/-/\\\\-/g')" "$page"; then
        echo "option '$opt' is not documented in $page"
        failed=1
    fi
done
[ $failed = 0 ] && echo "ok: $page renders cleanly and documents every command and option"
exit $failed
