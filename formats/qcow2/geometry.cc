// qcow2 geometry: derived sizes, index math and table extent validation.
// Pure. Implements specs/qcow2-notes.md §1 and the table checks of §2.
#include "formats/qcow2/geometry.h"

#include <cstdio>
#include <string>

#include "formats/bytes.h"

namespace coblock::qcow2 {

std::string hex_string(uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
    return buf;
}

Result<Geometry> make_geometry(uint32_t cluster_bits, bool extended_l2, uint32_t refcount_order) {
    if (cluster_bits < kMinClusterBits || cluster_bits > kMaxClusterBits) {
        return corrupt_error("qcow2: cluster_bits " + std::to_string(cluster_bits) +
                             " out of range " + std::to_string(kMinClusterBits) + ".." +
                             std::to_string(kMaxClusterBits));
    }
    if (extended_l2 && cluster_bits < kMinExtendedL2ClusterBits) {
        return corrupt_error("qcow2: extended l2 entries need cluster_bits >= " +
                             std::to_string(kMinExtendedL2ClusterBits) + ", got " +
                             std::to_string(cluster_bits));
    }
    if (refcount_order > kMaxRefcountOrder) {
        return corrupt_error("qcow2: refcount_order " + std::to_string(refcount_order) +
                             " exceeds limit " + std::to_string(kMaxRefcountOrder));
    }
    return Geometry{cluster_bits, extended_l2, refcount_order};
}

uint64_t l1_entries_for_size(const Geometry& geometry, uint64_t virtual_size) {
    // Shift instead of div_round_up(a + b - 1) so no addition can overflow.
    const uint32_t shift = geometry.cluster_bits + geometry.l2_bits();
    return (virtual_size >> shift) + ((virtual_size & (geometry.l2_coverage() - 1)) != 0);
}

uint64_t max_virtual_size(const Geometry& geometry) {
    // At most 2^22 entries * 2^39 bytes = 2^61: no overflow possible.
    return kMaxL1Entries * geometry.l2_coverage();
}

uint64_t max_host_size(const Geometry& geometry) {
    uint64_t clusters = 0;
    uint64_t bytes = 0;
    if (!checked_mul(kMaxRefcountTableBytes / 8, geometry.refcount_block_entries(), &clusters) ||
        !checked_mul(clusters, geometry.cluster_size(), &bytes) || bytes > kMaxImageOffset) {
        return kMaxImageOffset + 1;
    }
    return bytes;
}

uint64_t refcount_blocks_for_clusters(const Geometry& geometry, uint64_t host_clusters) {
    return div_round_up(host_clusters, geometry.refcount_block_entries());
}

Status validate_table_extent(std::string_view what, uint64_t offset, uint64_t length,
                             const Geometry& geometry, std::optional<uint64_t> file_size) {
    const std::string name(what);
    if (!geometry.is_cluster_aligned(offset)) {
        return corrupt_error("qcow2: " + name + " offset " + hex_string(offset) +
                                 " is not cluster aligned (cluster_size " +
                                 std::to_string(geometry.cluster_size()) + ")",
                             offset);
    }
    uint64_t end = 0;
    if (!checked_add(offset, length, &end) || end > kMaxImageOffset) {
        return corrupt_error("qcow2: " + name + " at " + hex_string(offset) + " with length " +
                                 std::to_string(length) + " exceeds the maximum image offset",
                             offset);
    }
    if (file_size && length != 0) {
        // QEMU itself leaves files ending in the middle of the last table
        // cluster, so only a range reaching a whole cluster past EOF is bad.
        uint64_t tolerated_end = 0;
        if (!checked_add(*file_size, geometry.cluster_size() - 1, &tolerated_end)) {
            tolerated_end = ~uint64_t{0};
        }
        tolerated_end = align_down(tolerated_end, geometry.cluster_size());
        if (offset >= *file_size || end > tolerated_end) {
            return corrupt_error("qcow2: " + name + " at " + hex_string(offset) + " with length " +
                                     std::to_string(length) + " exceeds file size " +
                                     std::to_string(*file_size),
                                 offset);
        }
    }
    return ok_status();
}

Result<std::vector<uint64_t>> decode_be64_table(ByteSpan bytes, uint64_t count,
                                                std::string_view what) {
    if (count > bytes.size() / 8) {
        return corrupt_error("qcow2: " + std::string(what) + " of " + std::to_string(count) +
                             " entries truncated to " + std::to_string(bytes.size()) + " bytes");
    }
    std::vector<uint64_t> table(count);
    for (uint64_t i = 0; i < count; ++i)
        table[i] = load_be<uint64_t>(bytes.data() + i * 8);
    return table;
}

std::vector<std::byte> encode_be64_table(std::span<const uint64_t> entries) {
    std::vector<std::byte> out(entries.size() * 8);
    for (size_t i = 0; i < entries.size(); ++i)
        store_be<uint64_t>(out.data() + i * 8, entries[i]);
    return out;
}

}  // namespace coblock::qcow2
