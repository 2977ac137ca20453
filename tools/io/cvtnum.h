// Number and pattern arguments of coblock-io commands, parsed exactly as
// qemu-io 7.2 parses them: cvtnum() is qemu_strtosz() (util/cutils.c
// do_strtosz) limited to INT64_MAX; parse_pattern() is qemu-io's strtol check.
#pragma once

#include <cstdint>

namespace coblock::io {

// Decimal or 0x hex, optional suffix b/k/m/g/t/p/e (any case, powers of
// 1024), a fraction only with a suffix ("1.5k"), leading blanks and '+'
// allowed, '-' never. Returns the value or -EINVAL / -ERANGE. A hex number
// with a suffix works but warns on stderr, as QEMU 7.2 does.
int64_t cvtnum(const char* text);

// qemu-io's print_cvtnum_err: the stdout message for a cvtnum() error.
void print_cvtnum_err(int64_t error, const char* text);

// A pattern byte (strtol base 0, 0..255, nothing after it). On error prints
// "X is not a valid pattern byte" on stdout and returns -1.
int parse_pattern(const char* text);

}  // namespace coblock::io
