// qcow version 1 L1/L2 entry decoding and encoding, table serialisation and
// the L2 entry lookup plan. Pure. Implements specs/qcow-v1.md §4 and §5.
#include "formats/qcow/qcow_tables.h"

#include <string>

namespace coblock::qcow {

using detail::hex;

namespace {

bool ends_in_range(uint64_t offset, uint64_t length) {
    uint64_t end = 0;
    return checked_add(offset, length, &end) && end <= kMaxFileOffset;
}

Result<std::vector<uint64_t>> parse_table(const char* what, uint64_t entry_count, ByteSpan bytes) {
    uint64_t expected = 0;
    if (!checked_mul(entry_count, kTableEntrySize, &expected))
        return invalid_argument(std::string("qcow: ") + what + " of " +
                                std::to_string(entry_count) + " entries is too large");
    if (bytes.size() != expected)
        return invalid_argument(std::string("qcow: ") + what + " of " +
                                std::to_string(entry_count) + " entries needs " +
                                std::to_string(expected) + " bytes, got " +
                                std::to_string(bytes.size()));
    std::vector<uint64_t> entries(entry_count);
    ByteReader reader(bytes);
    for (uint64_t& entry : entries)
        entry = reader.be64();
    return entries;
}

}  // namespace

Result<L1Entry> decode_l1_entry(const Geometry& geometry, uint64_t raw) {
    if (raw != 0 && !ends_in_range(raw, geometry.l2_table_bytes()))
        return corrupt_error("qcow: l1 entry " + hex(raw) + ": l2 table of " +
                             std::to_string(geometry.l2_table_bytes()) +
                             " bytes ends beyond limit " + hex(kMaxFileOffset));
    return L1Entry{raw};
}

Result<uint64_t> encode_l1_entry(const Geometry& geometry, const L1Entry& entry) {
    if (entry.l2_table_offset != 0 &&
        !ends_in_range(entry.l2_table_offset, geometry.l2_table_bytes()))
        return invalid_argument("qcow: l2 table offset " + hex(entry.l2_table_offset) +
                                " ends beyond limit " + hex(kMaxFileOffset));
    return entry.l2_table_offset;
}

Result<L2Entry> decode_l2_entry(const Geometry& geometry, uint64_t raw) {
    if (raw == 0) return L2Entry{};
    if (raw & kCompressedFlag) {
        // v1 stores the exact byte count in the cluster_bits bits above the
        // offset; the mask keeps the flag bit out of the size.
        const uint64_t offset = raw & compressed_offset_mask(geometry);
        const uint64_t size =
            (raw >> compressed_size_shift(geometry)) & (geometry.cluster_size() - 1);
        if (size == 0)
            return corrupt_error("qcow: l2 entry " + hex(raw) + ": compressed cluster at " +
                                 hex(offset) + " has size 0");
        return L2Entry{ClusterType::kCompressed, offset, size};
    }
    if (raw % kSectorSize != 0)
        return corrupt_error("qcow: l2 entry " + hex(raw) +
                             ": cluster offset is not a multiple of " +
                             std::to_string(kSectorSize));
    if (!ends_in_range(raw, geometry.cluster_size()))
        return corrupt_error("qcow: l2 entry " + hex(raw) + ": cluster ends beyond limit " +
                             hex(kMaxFileOffset));
    return L2Entry{ClusterType::kNormal, raw, 0};
}

Result<uint64_t> encode_l2_entry(const Geometry& geometry, const L2Entry& entry) {
    switch (entry.type) {
        case ClusterType::kUnallocated:
            if (entry.offset != 0 || entry.compressed_size != 0)
                return invalid_argument("qcow: unallocated l2 entry with offset " +
                                        hex(entry.offset) + " and compressed size " +
                                        std::to_string(entry.compressed_size));
            return uint64_t{0};
        case ClusterType::kNormal:
            if (entry.offset == 0 || entry.offset % kSectorSize != 0 ||
                entry.compressed_size != 0 || !ends_in_range(entry.offset, geometry.cluster_size()))
                return invalid_argument(
                    "qcow: normal cluster offset " + hex(entry.offset) + " (compressed size " +
                    std::to_string(entry.compressed_size) + ") cannot be encoded");
            return entry.offset;
        case ClusterType::kCompressed:
            if (entry.offset > compressed_offset_mask(geometry))
                return invalid_argument("qcow: compressed cluster offset " + hex(entry.offset) +
                                        " exceeds limit " + hex(compressed_offset_mask(geometry)));
            if (entry.compressed_size == 0 || entry.compressed_size >= geometry.cluster_size())
                return invalid_argument("qcow: compressed size " +
                                        std::to_string(entry.compressed_size) + " is not in 1.." +
                                        std::to_string(geometry.cluster_size() - 1));
            return kCompressedFlag | (entry.compressed_size << compressed_size_shift(geometry)) |
                   entry.offset;
    }
    return invalid_argument("qcow: unknown l2 entry type");
}

Result<uint64_t> host_offset(const Geometry& geometry, const L2Entry& entry,
                             uint64_t guest_offset) {
    if (entry.type != ClusterType::kNormal)
        return invalid_argument("qcow: host offset of guest offset " + hex(guest_offset) +
                                " asked of a cluster that is not a normal cluster");
    uint64_t host = 0;
    if (!checked_add(entry.offset, geometry.offset_in_cluster(guest_offset), &host))
        return invalid_argument("qcow: cluster offset " + hex(entry.offset) + " overflows");
    return host;
}

Result<Extent> compressed_extent(const L2Entry& entry) {
    if (entry.type != ClusterType::kCompressed)
        return invalid_argument(
            "qcow: compressed extent asked of a cluster that is not compressed");
    return Extent{entry.offset, entry.compressed_size};
}

Result<std::vector<uint64_t>> parse_l1_table(const Geometry& geometry, ByteSpan bytes) {
    return parse_table("l1 table", geometry.l1_size, bytes);
}

Result<std::vector<uint64_t>> parse_l2_table(const Geometry& geometry, ByteSpan bytes) {
    return parse_table("l2 table", geometry.l2_entries(), bytes);
}

std::vector<std::byte> encode_table(std::span<const uint64_t> entries) {
    std::vector<std::byte> bytes(entries.size() * kTableEntrySize);
    for (size_t i = 0; i < entries.size(); ++i)
        store_be<uint64_t>(bytes.data() + i * kTableEntrySize, entries[i]);
    return bytes;
}

std::array<std::byte, kTableEntrySize> encode_table_entry(uint64_t raw) {
    std::array<std::byte, kTableEntrySize> bytes{};
    store_be<uint64_t>(bytes.data(), raw);
    return bytes;
}

Result<uint64_t> table_entry_offset(uint64_t table_offset, uint64_t entry_count, uint64_t index) {
    if (index >= entry_count)
        return invalid_argument("qcow: table index " + std::to_string(index) +
                                " is beyond the table of " + std::to_string(entry_count) +
                                " entries");
    // index < entry_count, and a count times 8 fits in 64 bits for every
    // table this format allows (at most kMaxL1Size or 2^13 entries).
    uint64_t relative = 0;
    uint64_t offset = 0;
    if (!checked_mul(index, kTableEntrySize, &relative) ||
        !checked_add(table_offset, relative, &offset) || !ends_in_range(offset, kTableEntrySize))
        return invalid_argument("qcow: table entry " + std::to_string(index) + " of table at " +
                                hex(table_offset) + " ends beyond limit " + hex(kMaxFileOffset));
    return offset;
}

Result<std::optional<L2EntryLocation>> locate_l2_entry(const Geometry& geometry,
                                                       std::span<const uint64_t> l1_table,
                                                       uint64_t guest_offset) {
    const uint64_t l1_index = geometry.l1_index(guest_offset);
    if (l1_index >= l1_table.size())
        return invalid_argument("qcow: guest offset " + hex(guest_offset) + " needs l1 index " +
                                std::to_string(l1_index) + " beyond the l1 table of " +
                                std::to_string(l1_table.size()) + " entries");
    ASSIGN_OR_RETURN(const L1Entry l1_entry, decode_l1_entry(geometry, l1_table[l1_index]));
    if (!l1_entry.allocated()) return std::optional<L2EntryLocation>();
    const uint64_t l2_index = geometry.l2_index(guest_offset);
    ASSIGN_OR_RETURN(const uint64_t entry_offset,
                     table_entry_offset(l1_entry.l2_table_offset, geometry.l2_entries(), l2_index));
    return std::optional<L2EntryLocation>(
        L2EntryLocation{l1_index, l1_entry.l2_table_offset, l2_index, entry_offset});
}

}  // namespace coblock::qcow
