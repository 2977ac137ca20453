// Checksum rule and message helpers shared by the VHDX decoders. Pure.
// Implements spec vhdx.md §2.2.
#include "formats/vhdx/common.h"

#include <cstdio>

#include "formats/crc32c.h"

namespace coblock::vhdx {

uint32_t structure_checksum(ByteSpan structure) {
    static constexpr std::byte kZeroField[4] = {};
    uint32_t crc = crc32c(structure.first(kChecksumFieldOffset));
    crc = crc32c_extend(crc, ByteSpan(kZeroField, sizeof kZeroField));
    return crc32c_extend(crc, structure.subspan(kChecksumFieldOffset + 4));
}

void store_structure_checksum(MutableByteSpan structure) {
    store_le<uint32_t>(structure.data() + kChecksumFieldOffset, structure_checksum(structure));
}

std::string hex(uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
    return buf;
}

}  // namespace coblock::vhdx
