// qcow2 geometry: sizes derived from cluster_bits, the L2 entry width and the
// refcount order; guest/host offset index math; table extent validation.
// Pure. Implements specs/qcow2.txt "Host cluster management", "Cluster
// mapping", "Extended L2 Entries" and specs/qcow2-notes.md §1, §2 items 14-17.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/bytes.h"
#include "formats/qcow2/constants.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// The shape of one image. Only make_geometry() creates a valid one; every
// member function assumes the invariants it checked (cluster_bits 9..21,
// extended L2 only with cluster_bits >= 14, refcount_order 0..6), so none of
// them can overflow.
struct Geometry {
    uint32_t cluster_bits = 16;
    bool extended_l2 = false;
    uint32_t refcount_order = kDefaultRefcountOrder;

    uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
    // Bytes per L2 entry: 8, or 16 with extended L2 entries (entry + bitmap).
    uint32_t l2_entry_size() const { return extended_l2 ? 16 : 8; }
    // log2 of the entries per L2 table (an L2 table is exactly one cluster).
    uint32_t l2_bits() const { return cluster_bits - (extended_l2 ? 4 : 3); }
    uint64_t l2_entries() const { return uint64_t{1} << l2_bits(); }
    // Guest bytes covered by one L2 table (= by one L1 entry).
    uint64_t l2_coverage() const { return uint64_t{1} << (cluster_bits + l2_bits()); }
    uint32_t subclusters() const { return extended_l2 ? kSubclustersPerCluster : 1; }
    uint64_t subcluster_size() const { return cluster_size() / subclusters(); }
    uint32_t refcount_bits() const { return uint32_t{1} << refcount_order; }
    // Host clusters described by one refcount block.
    uint64_t refcount_block_entries() const { return cluster_size() * 8 / refcount_bits(); }
    // Largest storable refcount (2^bits - 1; all ones for 64-bit refcounts).
    uint64_t refcount_max() const {
        return refcount_order == 6 ? ~uint64_t{0} : (uint64_t{1} << refcount_bits()) - 1;
    }

    // Guest offset -> table indices (no bound on the L1 index: callers compare
    // it with l1_size, since reads beyond the L1 table are unallocated).
    uint64_t l1_index(uint64_t guest_offset) const {
        return guest_offset >> (cluster_bits + l2_bits());
    }
    uint64_t l2_index(uint64_t guest_offset) const {
        return (guest_offset >> cluster_bits) & (l2_entries() - 1);
    }
    uint64_t offset_in_cluster(uint64_t offset) const { return offset & (cluster_size() - 1); }
    uint32_t subcluster_index(uint64_t guest_offset) const {
        return static_cast<uint32_t>(offset_in_cluster(guest_offset) / subcluster_size());
    }
    bool is_cluster_aligned(uint64_t offset) const { return offset_in_cluster(offset) == 0; }

    // Host offset -> refcount table index / index inside the refcount block.
    uint64_t refcount_table_index(uint64_t host_offset) const {
        return (host_offset >> cluster_bits) / refcount_block_entries();
    }
    uint64_t refcount_block_index(uint64_t host_offset) const {
        return (host_offset >> cluster_bits) % refcount_block_entries();
    }

    bool operator==(const Geometry&) const = default;
};

// Validates the three parameters and returns the geometry. Errors (kCorrupt)
// name the field and value, e.g. "qcow2: cluster_bits 22 out of range 9..21".
Result<Geometry> make_geometry(uint32_t cluster_bits, bool extended_l2, uint32_t refcount_order);

// Number of L1 entries needed to map `virtual_size` guest bytes:
// ceil(virtual_size / l2_coverage). Never fails for a valid geometry.
uint64_t l1_entries_for_size(const Geometry& geometry, uint64_t virtual_size);

// The largest virtual size whose L1 table fits QEMU's 32 MiB L1 limit.
uint64_t max_virtual_size(const Geometry& geometry);

// The largest host file size the refcount structures can describe within
// QEMU's 8 MiB refcount table limit (saturated at kMaxImageOffset + 1).
uint64_t max_host_size(const Geometry& geometry);

// Refcount table entries (refcount blocks) needed to describe `host_clusters`.
uint64_t refcount_blocks_for_clusters(const Geometry& geometry, uint64_t host_clusters);

// A byte range of the image file.
struct Extent {
    uint64_t offset = 0;
    uint64_t length = 0;
    bool operator==(const Extent&) const = default;
};

// Checks that a table at [offset, offset + length) is cluster aligned, that
// the end does not overflow or pass kMaxImageOffset, and, when `file_size`
// is given, that the table does not start at or run one cluster or more past
// the end of the file (files may end mid-cluster; reads past EOF are zeros).
// `what` names the table in the message, e.g. "l1 table":
//   "qcow2: l1 table offset 0x10200 is not cluster aligned (cluster_size 65536)".
Status validate_table_extent(std::string_view what, uint64_t offset, uint64_t length,
                             const Geometry& geometry,
                             std::optional<uint64_t> file_size = std::nullopt);

// Decodes `count` big-endian 64-bit words (an L1 table, a refcount table)
// from `bytes`; kCorrupt naming `what` if `bytes` holds fewer. Entries are
// returned raw; decode them with decode_l1_entry/decode_refcount_table_entry.
Result<std::vector<uint64_t>> decode_be64_table(ByteSpan bytes, uint64_t count,
                                                std::string_view what);
// The inverse: 8 * entries.size() bytes.
std::vector<std::byte> encode_be64_table(std::span<const uint64_t> entries);

// "0x" followed by lower-case hex digits, for messages.
std::string hex_string(uint64_t value);

}  // namespace coblock::qcow2
