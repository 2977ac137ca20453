// qcow2 refcount structures: refcount table entries and refcount block entries
// of every width (refcount_order 0..6, i.e. 1 to 64 bits).
// Pure. Implements specs/qcow2.txt "Host cluster management" and
// specs/qcow2-notes.md §1 and §13.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/bytes.h"
#include "formats/qcow2/geometry.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// --- refcount table ---------------------------------------------------------

// Lossless decode of one refcount table entry.
struct RefcountTableEntry {
    uint64_t block_offset = 0;   // bits 9..63; 0: block not allocated (all refcounts 0)
    uint64_t reserved_bits = 0;  // bits 0..8 as found (must be 0)
    bool operator==(const RefcountTableEntry&) const = default;
};
RefcountTableEntry decode_refcount_table_entry(uint64_t word);
// Fields are masked to their bits.
uint64_t encode_refcount_table_entry(const RefcountTableEntry& entry);
// kCorrupt on reserved bits or a misaligned block offset, naming the index.
Status validate_refcount_table_entry(const RefcountTableEntry& entry, const Geometry& geometry,
                                     uint64_t index);

// --- refcount blocks --------------------------------------------------------

// Refcount entries held by `block_bytes` bytes at this order (a whole block
// is one cluster: refcount_block_entries() of the geometry).
inline uint64_t refcount_entries_in(uint64_t block_bytes, uint32_t refcount_order) {
    return block_bytes * 8 >> refcount_order;
}

// The largest refcount storable at `refcount_order` (0..6).
inline uint64_t refcount_max_for_order(uint32_t refcount_order) {
    return refcount_order >= 6 ? ~uint64_t{0} : (uint64_t{1} << (1u << refcount_order)) - 1;
}

// Reads entry `index` of a refcount block. Widths of 8 bits or more are
// big-endian integers at byte index * bits / 8; 1-, 2- and 4-bit entries
// pack from the least significant bit of each byte (byte 0x21 at 4 bits:
// entry 0 = 1, entry 1 = 2). kInvalidArgument for refcount_order > 6,
// kOutOfRange for an index outside `block`.
Result<uint64_t> get_refcount(ByteSpan block, uint64_t index, uint32_t refcount_order);

// Stores `value` in entry `index`, leaving neighbouring entries untouched.
// kInvalidArgument if the value exceeds refcount_max_for_order (refcounts
// saturate, they never wrap) or the order is > 6; kOutOfRange as above.
Status set_refcount(MutableByteSpan block, uint64_t index, uint32_t refcount_order, uint64_t value);

}  // namespace coblock::qcow2
