// qcow2 persistent dirty bitmaps: the bitmap directory's entries (name,
// granularity, flags, table location), decoded for `info`. Pure.
// Implements specs/qcow2.txt "Bitmap directory" with QEMU's limits
// (block/qcow2-bitmap.c: names up to 1023 bytes, granularity bits 9..31).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/bytes.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// Fixed part of a directory entry, before extra data and name.
inline constexpr uint64_t kBitmapEntryFixedBytes = 24;
inline constexpr uint32_t kBitmapFlagInUse = 1u << 0;
inline constexpr uint32_t kBitmapFlagAuto = 1u << 1;
inline constexpr uint32_t kBitmapFlagExtraDataCompatible = 1u << 2;
// QEMU's BME_MAX_NAME_SIZE.
inline constexpr uint32_t kMaxBitmapNameBytes = 1023;

struct BitmapDirectoryEntry {
    uint64_t bitmap_table_offset = 0;
    uint32_t bitmap_table_size = 0;
    uint32_t flags = 0;
    uint8_t type = 0;
    uint8_t granularity_bits = 0;
    std::vector<std::byte> extra_data;  // kept verbatim
    std::string name;
    bool operator==(const BitmapDirectoryEntry&) const = default;
};

// Decodes `nb_bitmaps` entries from `directory` (bitmap_directory_size
// bytes); each starts 8-byte aligned. kCorrupt, naming the entry, when an
// entry runs past the directory, its name is empty or longer than 1023
// bytes, or the padded entries do not fill the directory exactly.
Result<std::vector<BitmapDirectoryEntry>> parse_bitmap_directory(ByteSpan directory,
                                                                 uint32_t nb_bitmaps);

}  // namespace coblock::qcow2
