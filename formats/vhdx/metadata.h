// VHDX metadata region: the 64 KiB metadata table, the system items (file
// parameters, virtual disk size, page 83 data, sector sizes, parent locator)
// and the packing a writer uses. Pure. Implements spec vhdx.md §7 and §7.2.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "formats/bytes.h"
#include "formats/result.h"
#include "formats/vhdx/common.h"
#include "formats/vhdx/guid.h"
#include "formats/vhdx/parent_locator.h"

namespace coblock::vhdx {

inline constexpr size_t kMetadataTableSize = 64 * kKiB;
inline constexpr size_t kMetadataTableHeaderSize = 32;
inline constexpr size_t kMetadataTableEntrySize = 32;
// (64 KiB - 32-byte header) / 32-byte entries.
inline constexpr uint32_t kMaxMetadataEntries = 2047;
// Spec 2.6.1.2: more IsUser entries than this make the table invalid.
inline constexpr uint32_t kMaxUserMetadataEntries = 1024;
// Spec 2.6.1.2: no item is longer than 1 MiB.
inline constexpr uint32_t kMaxMetadataItemLength = 1 * kMiB;

inline constexpr uint32_t kMinBlockSize = 1 * kMiB;         // spec 2.6.2.1
inline constexpr uint32_t kMaxBlockSize = 256 * kMiB;       // spec 2.6.2.1
inline constexpr uint64_t kMaxVirtualDiskSize = 64 * kTiB;  // spec 2.6.2.2

struct MetadataTableEntry {
    Guid item_id;
    uint32_t offset = 0;  // from the start of the metadata region
    uint32_t length = 0;
    bool is_user = false;
    bool is_virtual_disk = false;
    bool is_required = false;

    bool operator==(const MetadataTableEntry&) const = default;
};

struct MetadataTable {
    std::vector<MetadataTableEntry> entries;

    bool operator==(const MetadataTable&) const = default;
};

// Decodes the 64 KiB table at the start of a metadata region of
// `region_length` bytes and checks it (spec §7.1, §12 #16-#17): signature
// "metadata"; entry count at most 2047; region at least 64 KiB; per entry:
// length at most 1 MiB, length 0 implies offset 0, otherwise offset at
// least 64 KiB and the item inside the region; items do not overlap;
// (item id, IsUser) unique; at most 1024 IsUser entries.
Result<MetadataTable> parse_metadata_table(ByteSpan bytes, uint64_t region_length);
// Encodes into `out` (at least 64 KiB; zeroes the 64 KiB).
Status encode_metadata_table(const MetadataTable& table, MutableByteSpan out);

struct FileParameters {
    uint32_t block_size = 0;
    bool leave_block_allocated = false;  // a fixed image
    bool has_parent = false;             // a differencing image

    bool operator==(const FileParameters&) const = default;
};

// The system items every reader needs, decoded and validated.
struct ImageMetadata {
    FileParameters file_parameters;
    uint64_t virtual_disk_size = 0;
    Guid virtual_disk_id;  // the page 83 data
    uint32_t logical_sector_size = 512;
    uint32_t physical_sector_size = 4096;
    std::optional<ParentLocator> parent_locator;

    bool operator==(const ImageMetadata&) const = default;
};

// Item payload encoders/decoders; each checks the item's length and value.
Result<FileParameters> parse_file_parameters(ByteSpan item);
Result<uint64_t> parse_virtual_disk_size(ByteSpan item);
Result<Guid> parse_virtual_disk_id(ByteSpan item);
Result<uint32_t> parse_sector_size(ByteSpan item, bool logical);

// The item bytes of one table entry (what the driver read for it).
struct MetadataItemBytes {
    Guid item_id;
    ByteSpan bytes;
};

// Where the items the reader needs live: one read per known system item of
// `table` (file offset = region_offset + entry offset). Unknown items with
// IsRequired are refused as unsupported, naming the GUID; other unknown
// items (and all user items) are skipped.
struct MetadataItemRead {
    Guid item_id;
    uint64_t file_offset = 0;
    uint32_t length = 0;

    bool operator==(const MetadataItemRead&) const = default;
};
Result<std::vector<MetadataItemRead>> plan_metadata_item_reads(const MetadataTable& table,
                                                               uint64_t region_offset);

// Decodes and validates the system items (spec §7.2, §12 #19-#25): the five
// mandatory items present with their minimum lengths; block size a power of
// two in [1 MiB, 256 MiB]; sector sizes 512 or 4096; virtual size a
// multiple of the logical sector size and at most 64 TiB; HasParent implies
// a parent locator, whose layout is decoded (its type is the caller's
// concern). `items` holds the bytes of each planned read, matched by GUID.
Result<ImageMetadata> parse_image_metadata(const MetadataTable& table,
                                           std::span<const MetadataItemBytes> items);
// Same, slicing the items out of the metadata region's bytes (or a prefix of
// them long enough for every known item).
Result<ImageMetadata> parse_image_metadata_from_region(const MetadataTable& table,
                                                       ByteSpan region_bytes);

// Builds the metadata region a writer stores: the table followed by the
// items packed from offset 64 KiB in the order file parameters, virtual
// disk size, virtual disk id, logical sector size, physical sector size,
// parent locator (QEMU's order and flags). Validates `metadata` like the
// parser does. Returns only the used prefix of the region; the rest is zero.
Result<std::vector<std::byte>> encode_metadata_region(const ImageMetadata& metadata);

}  // namespace coblock::vhdx
