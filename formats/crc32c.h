// CRC-32C (Castagnoli, the iSCSI CRC) used by VHDX headers, region tables and
// log entries. Pure: a software slicing-by-8 path plus an SSE4.2 path chosen at
// run time. Implements the checksum of spec vhdx.md §2.2.
#pragma once

#include <cstdint>

#include "formats/bytes.h"

namespace coblock {

// The CRC-32C of `data`: initial value 0xFFFFFFFF, reflected, final XOR
// 0xFFFFFFFF. crc32c("123456789") == 0xE3069283. Costs one pass over `data`.
uint32_t crc32c(ByteSpan data);

// Continues a finished CRC over more bytes, so that
// crc32c_extend(crc32c(a), b) == crc32c(a || b). crc32c_extend(0, x) == crc32c(x).
uint32_t crc32c_extend(uint32_t crc, ByteSpan data);

// The two implementations behind crc32c_extend, exposed so tests can
// cross-check them. crc32c_extend_hardware must only be called when
// crc32c_hardware_available() is true.
uint32_t crc32c_extend_software(uint32_t crc, ByteSpan data);
uint32_t crc32c_extend_hardware(uint32_t crc, ByteSpan data);
bool crc32c_hardware_available();

}  // namespace coblock
