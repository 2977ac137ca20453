// CRC-32C: software slicing-by-8 and the SSE4.2 crc32 instruction, selected
// once at run time. Pure (no I/O). Implements spec vhdx.md §2.2.
#include "formats/crc32c.h"

#include <array>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define COBLOCK_CRC32C_HAVE_SSE42 1
#endif

namespace coblock {
namespace {

constexpr uint32_t kCastagnoliReflected = 0x82F63B78;  // 0x1EDC6F41 bit-reversed

using SliceTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr SliceTables make_tables() {
    SliceTables t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) ? (c >> 1) ^ kCastagnoliReflected : c >> 1;
        t[0][i] = c;
    }
    // Table k advances a byte that sits k positions before the end of an 8-byte word.
    for (uint32_t i = 0; i < 256; ++i)
        for (size_t k = 1; k < 8; ++k)
            t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    return t;
}

constexpr SliceTables kTables = make_tables();

uint32_t update_software(uint32_t state, const std::byte* p, size_t n) {
    while (n >= 8) {
        const uint32_t lo = load_le<uint32_t>(p) ^ state;
        const uint32_t hi = load_le<uint32_t>(p + 4);
        state = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^
                kTables[5][(lo >> 16) & 0xff] ^ kTables[4][lo >> 24] ^ kTables[3][hi & 0xff] ^
                kTables[2][(hi >> 8) & 0xff] ^ kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        state = (state >> 8) ^ kTables[0][(state ^ std::to_integer<uint8_t>(*p++)) & 0xff];
    return state;
}

#ifdef COBLOCK_CRC32C_HAVE_SSE42
__attribute__((target("sse4.2"))) uint32_t update_sse42(uint32_t state, const std::byte* p,
                                                        size_t n) {
    uint64_t wide = state;
    while (n >= 8) {
        uint64_t word;
        std::memcpy(&word, p, sizeof word);  // x86 is little-endian; memcpy avoids misalignment
        wide = _mm_crc32_u64(wide, word);
        p += 8;
        n -= 8;
    }
    state = static_cast<uint32_t>(wide);
    while (n--)
        state = _mm_crc32_u8(state, std::to_integer<uint8_t>(*p++));
    return state;
}
#endif

bool detect_hardware() {
#ifdef COBLOCK_CRC32C_HAVE_SSE42
    return __builtin_cpu_supports("sse4.2");
#else
    return false;
#endif
}

}  // namespace

bool crc32c_hardware_available() {
    static const bool available = detect_hardware();
    return available;
}

uint32_t crc32c_extend_software(uint32_t crc, ByteSpan data) {
    return ~update_software(~crc, data.data(), data.size());
}

uint32_t crc32c_extend_hardware(uint32_t crc, ByteSpan data) {
#ifdef COBLOCK_CRC32C_HAVE_SSE42
    if (crc32c_hardware_available()) return ~update_sse42(~crc, data.data(), data.size());
#endif
    return crc32c_extend_software(crc, data);
}

uint32_t crc32c_extend(uint32_t crc, ByteSpan data) {
    return crc32c_hardware_available() ? crc32c_extend_hardware(crc, data)
                                       : crc32c_extend_software(crc, data);
}

uint32_t crc32c(ByteSpan data) {
    return crc32c_extend(0, data);
}

}  // namespace coblock
