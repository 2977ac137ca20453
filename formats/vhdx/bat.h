// VHDX block allocation table: entry encoding, payload and sector-bitmap
// states, the chunk-ratio interleave and index math, and the whole-table
// check against the file. Pure. Implements spec vhdx.md §7.3, §8 and §9.1.
#pragma once

#include <cstdint>
#include <span>

#include "formats/bytes.h"
#include "formats/result.h"
#include "formats/vhdx/common.h"
#include "formats/vhdx/extents.h"

namespace coblock::vhdx {

inline constexpr size_t kBatEntrySize = 8;
// One sector bitmap block describes 2^23 logical sectors (spec §7.3, §9.1).
inline constexpr uint64_t kSectorsPerChunk = uint64_t{1} << 23;
inline constexpr uint64_t kSectorBitmapBlockSize = 1 * kMiB;
// FileOffsetMB is 44 bits wide (spec §8.1).
inline constexpr uint64_t kMaxFileOffsetMb = (uint64_t{1} << 44) - 1;

// Payload block states (spec §8.3).
enum class PayloadState : uint8_t {
    kNotPresent = 0,
    kUndefined = 1,
    kZero = 2,
    kUnmapped = 3,
    kReserved4 = 4,
    kUnmappedV095 = 5,  // v0.95's UNMAPPED; QEMU reads it as zeros
    kFullyPresent = 6,
    kPartiallyPresent = 7,
};

// Sector bitmap block states (spec §8.4); other values are reserved.
inline constexpr uint8_t kSectorBitmapNotPresent = 0;
inline constexpr uint8_t kSectorBitmapPresent = 6;

// One decoded 64-bit entry. Lossless: encode(decode(x)) == x.
struct BatEntry {
    uint8_t state = 0;            // bits 0-2
    uint32_t reserved = 0;        // bits 3-19, should be zero (ignored on read)
    uint64_t file_offset_mb = 0;  // bits 20-63

    bool operator==(const BatEntry&) const = default;

    uint64_t file_offset() const { return file_offset_mb * kMiB; }
};

BatEntry decode_bat_entry(uint64_t raw);
uint64_t encode_bat_entry(const BatEntry& entry);
// A payload or sector-bitmap entry pointing at `file_offset` (MiB-aligned,
// below 2^64); the reserved bits are zero.
BatEntry make_bat_entry(uint8_t state, uint64_t file_offset);

// Derived sizes of spec §7.3/§8.2, computed once per image.
struct BatGeometry {
    uint64_t block_size = 0;
    uint64_t logical_sector_size = 0;
    uint64_t virtual_disk_size = 0;
    bool has_parent = false;
    uint64_t chunk_ratio = 0;    // payload blocks per sector bitmap block
    uint64_t chunk_size = 0;     // virtual bytes per chunk
    uint64_t data_blocks = 0;    // ceil(virtual size / block size)
    uint64_t bitmap_blocks = 0;  // ceil(data_blocks / chunk_ratio)
    uint64_t entry_count = 0;    // entries the BAT must hold

    bool operator==(const BatGeometry&) const = default;

    // Bytes of BAT a reader needs: entry_count * 8.
    uint64_t table_bytes() const { return entry_count * kBatEntrySize; }
};

// Validates the inputs (block size a power of two in [1 MiB, 256 MiB],
// logical sector 512 or 4096, virtual size a multiple of it and at most
// 64 TiB) and derives the geometry. Virtual size 0 gives 0 entries.
Result<BatGeometry> compute_bat_geometry(uint64_t block_size, uint64_t logical_sector_size,
                                         uint64_t virtual_disk_size, bool has_parent);

// Index math (spec §8.2). Callers pass in-range block/chunk numbers.
uint64_t payload_bat_index(const BatGeometry& g, uint64_t block);
uint64_t sector_bitmap_bat_index(const BatGeometry& g, uint64_t chunk);
bool is_sector_bitmap_index(const BatGeometry& g, uint64_t bat_index);
// For a payload entry: its block; for a bitmap entry: its chunk.
uint64_t block_of_bat_index(const BatGeometry& g, uint64_t bat_index);
uint64_t chunk_of_bat_index(const BatGeometry& g, uint64_t bat_index);

// Where a virtual byte offset lives (spec §8.5 worked example).
struct VirtualLocation {
    uint64_t block = 0;
    uint64_t offset_in_block = 0;
    uint64_t bat_index = 0;  // the payload entry
    uint64_t chunk = 0;
    uint64_t bitmap_bat_index = 0;     // the chunk's sector bitmap entry
    uint64_t sector_in_chunk = 0;      // the bit number in the bitmap block
    uint64_t bytes_left_in_block = 0;  // contiguous bytes from here to the block end

    bool operator==(const VirtualLocation&) const = default;
};
// `virtual_offset` must be below the virtual disk size (invalid argument otherwise).
Result<VirtualLocation> locate_virtual_offset(const BatGeometry& g, uint64_t virtual_offset);

// The entry at `bat_index` of a BAT held in `table` (invalid argument if it
// lies outside `table`).
Result<BatEntry> read_bat_entry(ByteSpan table, uint64_t bat_index);
Status write_bat_entry(MutableByteSpan table, uint64_t bat_index, const BatEntry& entry);

// Checks the BAT region can hold the table (spec §12 #26).
Status check_bat_region_length(const BatGeometry& g, uint64_t region_length);

// Checks one entry's state and offset (spec §8.3, §8.4, §12 #27, #31):
// payload states 4, and 7 without a parent, are corrupt; a FULLY/PARTIALLY
// present payload or a PRESENT bitmap (with a parent) needs an offset past
// the header section. Bitmap entries of images without a parent are ignored.
Status check_bat_entry(const BatGeometry& g, uint64_t bat_index, const BatEntry& entry);

// Checks the whole table (the first table_bytes() of `table`) against the
// file (spec §8.1, §12 #27-#29): every entry passes check_bat_entry; every
// allocated block (present payload blocks; bitmap blocks marked PRESENT,
// with or without a parent) lies inside `file_size` and overlaps neither
// `fixed_extents` (see image_extents) nor another block; PARTIALLY present
// blocks need their chunk's bitmap PRESENT. A payload block covering the
// end of the virtual disk need only be backed up to that end (QEMU's fixed
// images end there). Costs O(n log n) time and 16 bytes per allocated block.
Status check_bat(const BatGeometry& g, ByteSpan table, uint64_t file_size,
                 std::span<const Extent> fixed_extents);

}  // namespace coblock::vhdx
