// Constants shared by the VHDX decoders (sizes of the fixed areas, limits)
// and the checksum rule every checksummed structure follows. Pure.
// Implements spec vhdx.md §2.2 (checksum rule), §3 (file layout), §1 (units).
#pragma once

#include <cstdint>
#include <string>

#include "formats/bytes.h"

namespace coblock::vhdx {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;
inline constexpr uint64_t kTiB = 1024 * kGiB;

// The header section (spec §3): five 64 KiB slots in the first MiB.
inline constexpr uint64_t kFileIdentifierOffset = 0;
inline constexpr uint64_t kHeader1Offset = 64 * kKiB;
inline constexpr uint64_t kHeader2Offset = 128 * kKiB;
inline constexpr uint64_t kRegionTable1Offset = 192 * kKiB;
inline constexpr uint64_t kRegionTable2Offset = 256 * kKiB;
inline constexpr uint64_t kHeaderSectionSize = 1 * kMiB;
// Bytes a driver reads first: identifier, both headers, both region tables.
inline constexpr uint64_t kHeaderSectionReadSize = 320 * kKiB;

// Every object after the header section starts on a MiB boundary (spec §3).
inline constexpr uint64_t kObjectAlignment = 1 * kMiB;

// Offset of the 4-byte checksum field in headers, region tables, log entries.
inline constexpr size_t kChecksumFieldOffset = 4;

// CRC-32C of `structure` with its checksum field (bytes 4..7) taken as zero,
// the rule of spec §2.2. `structure` must be at least 8 bytes long.
uint32_t structure_checksum(ByteSpan structure);

// Computes structure_checksum(structure) and stores it into bytes 4..7.
void store_structure_checksum(MutableByteSpan structure);

// "0x1f000" — hex for offsets in error messages.
std::string hex(uint64_t value);

}  // namespace coblock::vhdx
