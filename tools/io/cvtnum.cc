// qemu_strtosz as QEMU 7.2 implements it (do_strtosz with default suffix 'B'
// and unit 1024), reproduced step by step because qemu-io scripts depend on
// its corner cases: "1." and "1.k" are valid, ".5k" and "1.5" are not, "0x1k"
// warns, and an exact 128-bit product decides "argument too large".
#include "tools/io/cvtnum.h"

#include <bit>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tools/io/report.h"

namespace coblock::io {

namespace {

int64_t suffix_multiplier(char suffix) {
    switch (suffix) {
        case 'B':
        case 'b':
            return 1;
        case 'K':
        case 'k':
            return 1LL << 10;
        case 'M':
        case 'm':
            return 1LL << 20;
        case 'G':
        case 'g':
            return 1LL << 30;
        case 'T':
        case 't':
            return 1LL << 40;
        case 'P':
        case 'p':
            return 1LL << 50;
        case 'E':
        case 'e':
            return 1LL << 60;
    }
    return -1;
}

// qemu_strtou64 with an end pointer: strtoull plus QEMU's error rules
// ("no conversion" is -EINVAL, overflow -ERANGE).
int strtou64(const char* text, const char** end, int base, uint64_t* value) {
    char* ep;
    errno = 0;
    *value = std::strtoull(text, &ep, base);
    int err = errno;
    if (err == ERANGE) *value = UINT64_MAX;
    // glibc parses "0x" in base 16 as 0 and stops after the '0' already.
    *end = ep;
    if (err == 0 && ep == text) return -EINVAL;
    return -err;
}

int do_strtosz(const char* text, uint64_t* result) {
    const char* end = text;
    uint64_t value = 0, fraction_fixed = 0;
    bool hex = false;
    int ret = strtou64(text, &end, 10, &value);
    if (ret == 0 && std::memchr(text, '-', static_cast<size_t>(end - text)) != nullptr) {
        end = text;
        ret = -EINVAL;
    }
    if (ret == 0 && value == 0 && (*end == 'x' || *end == 'X')) {
        // Looks like hex: reparse, and insist on no fraction.
        ret = strtou64(text, &end, 16, &value);
        if (ret == 0 && *end == '.') {
            end = text;
            ret = -EINVAL;
        }
        hex = true;
    } else if (ret == 0 && *end == '.') {
        // A fraction; "1.k" is valid without digits, an exponent is not.
        const char* f = end;
        char* fend;
        errno = 0;
        double fraction = std::strtod(f, &fend);
        if (fend == f || errno != 0 || !std::isfinite(fraction)) {
            end = f + 1;
        } else if (std::memchr(f, 'e', static_cast<size_t>(fend - f)) ||
                   std::memchr(f, 'E', static_cast<size_t>(fend - f))) {
            end = text;
            ret = -EINVAL;
        } else {
            end = fend;
            fraction_fixed = static_cast<uint64_t>(fraction * 0x1p64);
        }
    }
    if (ret == 0) {
        int64_t mul = suffix_multiplier(*end);
        if (mul > 0) {
            if (hex)
                warn_report(
                    std::string("Using a multiplier suffix on hex numbers is deprecated: ") + text);
            end++;
        } else {
            mul = 1;
        }
        if (mul == 1) {
            // A fraction needs a scale.
            if (fraction_fixed != 0) {
                end = text;
                ret = -EINVAL;
            }
        } else {
            // Exact 64.64 x 64.0 product, rounding half up; overflow of the
            // integer part is "too large". Every multiplier is 2^shift, so
            // the product is a shift of the 128-bit fixed-point value.
            const int shift = std::countr_zero(static_cast<uint64_t>(mul));
            const uint64_t high = value >> (64 - shift);
            uint64_t low = value << shift;
            const uint64_t fraction_int = fraction_fixed >> (64 - shift);
            const uint64_t fraction_rest = fraction_fixed << shift;
            uint64_t carry = 0;
            low += fraction_int;
            carry += low < fraction_int;
            const uint64_t half_up = fraction_rest >> 63;
            low += half_up;
            carry += low < half_up;
            if (high != 0 || carry != 0) {
                ret = -ERANGE;
            } else {
                value = low;
            }
        }
    }
    // No end pointer wanted: trailing text is an error (even after ERANGE).
    if (*end) ret = -EINVAL;
    if (ret == 0) *result = value;
    return ret;
}

}  // namespace

int64_t cvtnum(const char* text) {
    uint64_t value = 0;
    int ret = do_strtosz(text, &value);
    if (ret < 0) return ret;
    if (value > static_cast<uint64_t>(INT64_MAX)) return -ERANGE;
    return static_cast<int64_t>(value);
}

void print_cvtnum_err(int64_t error, const char* text) {
    switch (error) {
        case -EINVAL:
            std::printf(
                "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- %s\n",
                text);
            break;
        case -ERANGE:
            std::printf("Parsing error: argument too large -- %s\n", text);
            break;
        default:
            std::printf("Parsing error: %s\n", text);
    }
}

int parse_pattern(const char* text) {
    char* end = nullptr;
    long pattern = std::strtol(text, &end, 0);
    if (pattern < 0 || pattern > UCHAR_MAX || *end != '\0') {
        std::printf("%s is not a valid pattern byte\n", text);
        return -1;
    }
    return static_cast<int>(pattern);
}

}  // namespace coblock::io
