// qcow version 1 L1 and L2 tables: entry decoding/encoding (normal and
// compressed clusters), table (de)serialisation and the lookup plan for a
// guest offset. Pure. Implements specs/qcow-v1.md §4 (table entries) and §5.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "formats/bytes.h"
#include "formats/qcow/qcow_geometry.h"
#include "formats/result.h"

namespace coblock::qcow {

// Bit 63 of an L2 entry marks a compressed cluster; it is the only flag in v1
// (qcow2 uses bit 62 and keeps bit 63 for COPIED).
inline constexpr uint64_t kCompressedFlag = uint64_t{1} << 63;

// An L1 entry is the file offset of an L2 table, with no flag bits. 0 means
// no L2 table: everything it would cover is unallocated.
struct L1Entry {
    uint64_t l2_table_offset = 0;

    bool allocated() const { return l2_table_offset != 0; }
    bool operator==(const L1Entry&) const = default;
};

// Decodes a raw L1 value. Fails (corrupt) when the L2 table it points to
// would end beyond kMaxFileOffset. Alignment is not checked (QEMU does not);
// a table beyond the end of the file reads as zeros, as in QEMU.
Result<L1Entry> decode_l1_entry(const Geometry& geometry, uint64_t raw);
// The raw value for an entry; fails (invalid argument) on what decode refuses.
Result<uint64_t> encode_l1_entry(const Geometry& geometry, const L1Entry& entry);

enum class ClusterType {
    kUnallocated,  // read from the backing file, or zeros without one
    kNormal,       // `offset` is the file offset of the cluster
    kCompressed,   // `compressed_size` bytes of raw deflate at `offset`
};

// A decoded L2 entry. For kUnallocated both numbers are 0; for kNormal
// compressed_size is 0.
struct L2Entry {
    ClusterType type = ClusterType::kUnallocated;
    uint64_t offset = 0;
    uint64_t compressed_size = 0;  // exact byte count (not sectors, unlike qcow2)

    bool operator==(const L2Entry&) const = default;
};

// Mask of the compressed-data offset: bits 0 .. (62 - cluster_bits).
inline uint64_t compressed_offset_mask(const Geometry& geometry) {
    return (uint64_t{1} << (63 - geometry.cluster_bits)) - 1;
}
// The compressed size sits in the cluster_bits bits above the offset.
inline uint32_t compressed_size_shift(const Geometry& geometry) {
    return 63 - geometry.cluster_bits;
}

// Decodes a raw L2 value (§4). Fails (corrupt, naming the raw entry) for a
// normal cluster whose offset is not a multiple of kSectorSize (QEMU fails
// such reads with EIO) or that would end beyond kMaxFileOffset, and for a
// compressed cluster of size 0 (no deflate stream can inflate from 0 bytes).
Result<L2Entry> decode_l2_entry(const Geometry& geometry, uint64_t raw);
// The raw value for an entry; fails (invalid argument) on anything that
// decode_l2_entry would refuse or that does not fit the bit fields.
Result<uint64_t> encode_l2_entry(const Geometry& geometry, const L2Entry& entry);

// File offset of the byte at guest_offset inside a normal cluster:
// entry.offset + offset_in_cluster. Fails (invalid argument) for other types.
Result<uint64_t> host_offset(const Geometry& geometry, const L2Entry& entry, uint64_t guest_offset);

// The bytes to read for a compressed cluster; they inflate to one cluster.
// Fails (invalid argument) unless entry.type is kCompressed.
Result<Extent> compressed_extent(const L2Entry& entry);

// Tables as raw big-endian values. parse_* want exactly the table's size in
// bytes (l1_table_bytes() / l2_table_bytes(); invalid argument otherwise) and
// do not judge entries: decode each one when it is used, as QEMU does.
Result<std::vector<uint64_t>> parse_l1_table(const Geometry& geometry, ByteSpan bytes);
Result<std::vector<uint64_t>> parse_l2_table(const Geometry& geometry, ByteSpan bytes);
std::vector<std::byte> encode_table(std::span<const uint64_t> entries);
std::array<std::byte, kTableEntrySize> encode_table_entry(uint64_t raw);

// File offset of entry `index` of a table of `entry_count` entries at
// `table_offset` (L1: l1_table_offset and l1_size; L2: an L1 entry's
// l2_table_offset and l2_entries()). Fails (invalid argument) when index >=
// entry_count or the entry would end beyond kMaxFileOffset.
Result<uint64_t> table_entry_offset(uint64_t table_offset, uint64_t entry_count, uint64_t index);

// Step one of a lookup: where the L2 entry for guest_offset lives, given the
// L1 table in memory. nullopt when the L1 entry is 0 (cluster unallocated).
// The driver reads the 8 bytes at entry_offset (or the whole table at
// l2_table_offset, for a cache) and hands the value to decode_l2_entry().
struct L2EntryLocation {
    uint64_t l1_index = 0;
    uint64_t l2_table_offset = 0;
    uint64_t l2_index = 0;
    uint64_t entry_offset = 0;  // l2_table_offset + 8 * l2_index

    bool operator==(const L2EntryLocation&) const = default;
};
// Fails (invalid argument) when guest_offset lies beyond the L1 table, and
// like decode_l1_entry() when the L1 entry is out of range.
Result<std::optional<L2EntryLocation>> locate_l2_entry(const Geometry& geometry,
                                                       std::span<const uint64_t> l1_table,
                                                       uint64_t guest_offset);

}  // namespace coblock::qcow
