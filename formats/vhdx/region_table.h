// VHDX region table: decode and encode the 64 KiB table, pick a valid copy,
// and sort the entries into the BAT, the metadata region and the rest.
// Pure. Implements spec vhdx.md §6.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/bytes.h"
#include "formats/result.h"
#include "formats/vhdx/common.h"
#include "formats/vhdx/guid.h"

namespace coblock::vhdx {

inline constexpr size_t kRegionTableSize = 64 * kKiB;  // the checksummed structure
inline constexpr size_t kRegionTableHeaderSize = 16;
inline constexpr size_t kRegionTableEntrySize = 32;
// (64 KiB - 16-byte header) / 32-byte entries, rounded down.
inline constexpr uint32_t kMaxRegionTableEntries = 2047;

// The longest region an entry can describe: its length field has 32 bits
// and a region is a whole number of MiB.
inline constexpr uint64_t kMaxRegionLength = 0xFFF00000;

struct RegionTableEntry {
    Guid guid;
    uint64_t file_offset = 0;
    uint32_t length = 0;
    bool required = false;  // bit 0 of the Required field; other bits are reserved

    bool operator==(const RegionTableEntry&) const = default;
};

struct RegionTable {
    std::vector<RegionTableEntry> entries;

    bool operator==(const RegionTable&) const = default;
};

// Decodes a 64 KiB region table: signature "regi", CRC-32C over 64 KiB,
// entry count at most 2047. Entries are not judged here (see classify_regions).
Result<RegionTable> parse_region_table(ByteSpan bytes);
// Encodes into `out` (at least kRegionTableSize bytes; zeroes the 64 KiB).
// Fails if there are more than 2047 entries.
Status encode_region_table(const RegionTable& table, MutableByteSpan out);

// Parses copy 1; if it is invalid, falls back to copy 2 (spec §6.3 allows
// it; QEMU reads only copy 1). Fails with copy 1's error if both are bad.
struct RegionTableChoice {
    RegionTable table;
    int copy = 0;  // 0: copy 1 at 192 KiB, 1: copy 2 at 256 KiB
};
Result<RegionTableChoice> select_region_table(ByteSpan copy1, ByteSpan copy2);

// The regions a reader acts on.
struct KnownRegions {
    RegionTableEntry bat;
    RegionTableEntry metadata;
    std::vector<RegionTableEntry> others;  // unknown optional regions, kept for overlap checks

    bool operator==(const KnownRegions&) const = default;
};

// Checks every entry and sorts them (spec §6.1-§6.3, §12 #12, #14, #15):
// GUIDs unique; offset MiB-aligned and at least 1 MiB; length a non-zero
// multiple of 1 MiB; offset + length does not overflow; BAT and metadata
// present exactly once (the Required bit is not insisted on: QEMU clears it);
// an unknown region with Required set is refused as unsupported, naming its
// GUID. Placement in the file and overlaps are the extent checker's job.
Result<KnownRegions> classify_regions(const RegionTable& table);

}  // namespace coblock::vhdx
