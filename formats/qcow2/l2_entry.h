// qcow2 L1 and L2 table entries: standard and extended (subcluster) L2
// entries, compressed cluster descriptors, cluster/subcluster classification.
// Pure. Implements specs/qcow2.txt "Cluster mapping", "Extended L2 Entries"
// and specs/qcow2-notes.md §1, §4, §11.1-11.3, §12.
#pragma once

#include <cstdint>

#include "formats/bytes.h"
#include "formats/qcow2/constants.h"
#include "formats/qcow2/geometry.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// --- L1 entries -------------------------------------------------------------

// Lossless decode of one L1 entry: encode_l1_entry(decode_l1_entry(w)) == w.
struct L1Entry {
    uint64_t l2_offset = 0;      // bits 9..55; 0: no L2 table
    bool copied = false;         // bit 63: L2 table refcount is exactly 1
    uint64_t reserved_bits = 0;  // bits 0..8, 56..62 as found (must be 0)
    bool operator==(const L1Entry&) const = default;
};
L1Entry decode_l1_entry(uint64_t word);
uint64_t encode_l1_entry(const L1Entry& entry);
// kCorrupt on reserved bits or an L2 offset that is not cluster aligned.
// `index` only feeds the message ("qcow2: l1 entry 3 ...").
Status validate_l1_entry(const L1Entry& entry, const Geometry& geometry, uint64_t index);

// --- L2 entries -------------------------------------------------------------

// One L2 entry: the 64-bit descriptor plus, with extended L2 entries, the
// 64-bit subcluster bitmap (0 otherwise). Decoding depends on cluster_bits
// (the compressed split) and is lossless for every descriptor value:
// encode_l2_entry(decode_l2_entry(w, b, g), g) == w.
struct L2Entry {
    bool copied = false;      // bit 63
    bool compressed = false;  // bit 62
    // Standard: host cluster offset (bits 9..55). Compressed: host byte
    // offset of the compressed data (bits 0..x-1, x = 70 - cluster_bits).
    uint64_t host_offset = 0;
    bool zero = false;           // standard only: bit 0 (unused with extended L2)
    uint64_t reserved_bits = 0;  // standard only: bits 1..8 and 56..61 as found
    // Compressed only: 512-byte sectors beyond the one holding host_offset.
    uint64_t additional_sectors = 0;
    uint64_t bitmap = 0;  // extended L2: alloc bits 0..31, zero bits 32..63
    bool operator==(const L2Entry&) const = default;
};

L2Entry decode_l2_entry(uint64_t word, uint64_t bitmap, const Geometry& geometry);
// The descriptor word. kInvalidArgument if a field does not fit its bits
// (e.g. additional_sectors wider than cluster_bits - 8 bits).
Result<uint64_t> encode_l2_entry(const L2Entry& entry, const Geometry& geometry);

// Raw access to an L2 table (one cluster, or a slice of one). `index` is an
// entry index; kOutOfRange when it lies outside `table`.
struct RawL2Entry {
    uint64_t word = 0;
    uint64_t bitmap = 0;  // extended L2 only
    bool operator==(const RawL2Entry&) const = default;
};
Result<RawL2Entry> read_l2_entry(ByteSpan table, uint64_t index, bool extended_l2);
Status write_l2_entry(MutableByteSpan table, uint64_t index, bool extended_l2, RawL2Entry entry);

// Cluster types of qcow2-notes.md §4 (standard entries; with extended L2 the
// zero flag is ignored and only kUnallocated/kNormal/kCompressed result,
// per-subcluster detail comes from subcluster_type).
enum class ClusterType { kUnallocated, kZeroPlain, kZeroAlloc, kNormal, kCompressed };
// `external_data_file`: with incompatible bit 2 an offset of 0 with COPIED
// set is a valid host cluster (guest offset 0).
ClusterType classify_l2_entry(const L2Entry& entry, const Geometry& geometry,
                              bool external_data_file = false);

// Subcluster types of qcow2-notes.md §12. For a non-extended image the
// "subcluster" is the whole cluster (index 0). kInvalid when the bitmap is
// inconsistent for that subcluster.
enum class SubclusterType {
    kUnallocatedPlain,
    kUnallocatedAlloc,
    kZeroPlain,
    kZeroAlloc,
    kNormal,
    kCompressed,
    kInvalid,
};
SubclusterType subcluster_type(const L2Entry& entry, const Geometry& geometry, uint32_t subcluster,
                               bool external_data_file = false);

// Context that decides which entries are legal.
struct L2Context {
    uint32_t version = kVersion3;     // v2: no zero flag
    bool external_data_file = false;  // no compressed clusters
};
// kCorrupt, naming the entry index and the raw value, when: reserved bits are
// set (standard), the host offset is misaligned, the zero flag appears in a
// v2 image, a compressed entry has COPIED, offset bits >= 56, runs with an
// external data file, or has a non-zero bitmap; an extended bitmap has a
// subcluster both allocated and zero, or allocation bits without an offset.
Status validate_l2_entry(const L2Entry& entry, const Geometry& geometry, const L2Context& context,
                         uint64_t index);

// --- compressed cluster descriptors -------------------------------------------

// Bit position where the sector count starts: x = 70 - cluster_bits.
inline uint32_t compressed_offset_bits(const Geometry& geometry) {
    return 70 - geometry.cluster_bits;
}
// Largest value of the additional-sectors field: 2^(cluster_bits - 8) - 1.
inline uint64_t max_additional_sectors(const Geometry& geometry) {
    return (uint64_t{1} << (geometry.cluster_bits - 8)) - 1;
}

// The bytes a reader must fetch for a compressed entry (qcow2-notes.md §11.2):
// from host_offset to the end of its last 512-byte sector. May run past EOF.
Extent compressed_read_extent(const L2Entry& entry);

// The range of host cluster indices [first, last] the read extent touches;
// each gets one reference per compressed cluster (§11.5).
struct ClusterRange {
    uint64_t first = 0;
    uint64_t last = 0;
    bool operator==(const ClusterRange&) const = default;
};
ClusterRange compressed_host_clusters(const L2Entry& entry, const Geometry& geometry);

// Builds the L2 entry for compressed data of `compressed_length` bytes stored
// at `host_offset` (§11.3). kInvalidArgument when the length is 0 or would
// need more sectors than the field holds, or the offset does not fit below
// min(2^x, 2^56).
Result<L2Entry> make_compressed_entry(uint64_t host_offset, uint64_t compressed_length,
                                      const Geometry& geometry);

}  // namespace coblock::qcow2
