// qcow2 L1/L2 entries and compressed descriptors: decode, encode, classify,
// validate. Pure. Implements specs/qcow2.txt "Cluster mapping" and
// "Extended L2 Entries"; specs/qcow2-notes.md §4, §11, §12.
#include "formats/qcow2/l2_entry.h"

#include <string>

namespace coblock::qcow2 {

namespace {

std::string u64s(uint64_t v) {
    return std::to_string(v);
}

std::string l2_label(uint64_t index, const L2Entry& entry, const Geometry& geometry) {
    const Result<uint64_t> word = encode_l2_entry(entry, geometry);
    return "qcow2: l2 entry " + u64s(index) + " (" + hex_string(word.value_or(0)) + ")";
}

}  // namespace

L1Entry decode_l1_entry(uint64_t word) {
    return L1Entry{word & kL1OffsetMask, (word & kCopiedFlag) != 0, word & kL1ReservedMask};
}

uint64_t encode_l1_entry(const L1Entry& entry) {
    return (entry.l2_offset & kL1OffsetMask) | (entry.copied ? kCopiedFlag : 0) |
           (entry.reserved_bits & kL1ReservedMask);
}

Status validate_l1_entry(const L1Entry& entry, const Geometry& geometry, uint64_t index) {
    // Built only on failure: this runs on every guest request.
    auto label = [&] {
        return "qcow2: l1 entry " + u64s(index) + " (" + hex_string(encode_l1_entry(entry)) + ")";
    };
    if (entry.reserved_bits != 0) {
        return corrupt_error(label() + " has reserved bits " + hex_string(entry.reserved_bits) +
                             " set");
    }
    if (!geometry.is_cluster_aligned(entry.l2_offset)) {
        return corrupt_error(label() + " l2 table offset " + hex_string(entry.l2_offset) +
                             " is not cluster aligned");
    }
    return ok_status();
}

L2Entry decode_l2_entry(uint64_t word, uint64_t bitmap, const Geometry& geometry) {
    L2Entry e;
    e.copied = (word & kCopiedFlag) != 0;
    e.compressed = (word & kCompressedFlag) != 0;
    e.bitmap = bitmap;
    if (e.compressed) {
        const uint32_t x = compressed_offset_bits(geometry);
        e.host_offset = word & ((uint64_t{1} << x) - 1);
        e.additional_sectors = (word >> x) & max_additional_sectors(geometry);
    } else {
        e.host_offset = word & kL2OffsetMask;
        e.zero = (word & kZeroFlag) != 0;
        e.reserved_bits = word & kL2ReservedMask;
    }
    return e;
}

Result<uint64_t> encode_l2_entry(const L2Entry& e, const Geometry& geometry) {
    const uint64_t copied = e.copied ? kCopiedFlag : 0;
    if (e.compressed) {
        const uint32_t x = compressed_offset_bits(geometry);
        if (e.zero || e.reserved_bits != 0) {
            return invalid_argument("qcow2: compressed l2 entry with standard fields set");
        }
        if (e.host_offset >> x) {
            return invalid_argument("qcow2: compressed host offset " + hex_string(e.host_offset) +
                                    " does not fit in " + u64s(x) + " bits");
        }
        if (e.additional_sectors > max_additional_sectors(geometry)) {
            return invalid_argument("qcow2: compressed additional sectors " +
                                    u64s(e.additional_sectors) + " exceed " +
                                    u64s(max_additional_sectors(geometry)));
        }
        return copied | kCompressedFlag | (e.additional_sectors << x) | e.host_offset;
    }
    if (e.additional_sectors != 0) {
        return invalid_argument("qcow2: standard l2 entry with a compressed sector count");
    }
    if (e.host_offset & ~kL2OffsetMask) {
        return invalid_argument("qcow2: host offset " + hex_string(e.host_offset) +
                                " does not fit the l2 offset field");
    }
    if (e.reserved_bits & ~kL2ReservedMask) {
        return invalid_argument("qcow2: reserved bits " + hex_string(e.reserved_bits) +
                                " outside the reserved mask");
    }
    return copied | e.host_offset | e.reserved_bits | (e.zero ? kZeroFlag : 0);
}

Result<RawL2Entry> read_l2_entry(ByteSpan table, uint64_t index, bool extended_l2) {
    const uint64_t size = extended_l2 ? 16 : 8;
    if (index >= table.size() / size) {
        return make_error(ErrorKind::kOutOfRange, "qcow2: l2 index " + u64s(index) +
                                                      " outside a table of " + u64s(table.size()) +
                                                      " bytes");
    }
    const std::byte* p = table.data() + index * size;
    return RawL2Entry{load_be<uint64_t>(p), extended_l2 ? load_be<uint64_t>(p + 8) : 0};
}

Status write_l2_entry(MutableByteSpan table, uint64_t index, bool extended_l2, RawL2Entry entry) {
    const uint64_t size = extended_l2 ? 16 : 8;
    if (index >= table.size() / size) {
        return make_error(ErrorKind::kOutOfRange, "qcow2: l2 index " + u64s(index) +
                                                      " outside a table of " + u64s(table.size()) +
                                                      " bytes");
    }
    std::byte* p = table.data() + index * size;
    store_be<uint64_t>(p, entry.word);
    if (extended_l2) store_be<uint64_t>(p + 8, entry.bitmap);
    return ok_status();
}

ClusterType classify_l2_entry(const L2Entry& e, const Geometry& geometry, bool external_data_file) {
    if (e.compressed) return ClusterType::kCompressed;
    // Extended L2 entries keep zero state in the bitmap; bit 0 is ignored.
    if (e.zero && !geometry.extended_l2) {
        return e.host_offset != 0 ? ClusterType::kZeroAlloc : ClusterType::kZeroPlain;
    }
    if (e.host_offset == 0 && !(external_data_file && e.copied)) return ClusterType::kUnallocated;
    return ClusterType::kNormal;
}

SubclusterType subcluster_type(const L2Entry& e, const Geometry& geometry, uint32_t subcluster,
                               bool external_data_file) {
    const ClusterType type = classify_l2_entry(e, geometry, external_data_file);
    if (!geometry.extended_l2) {
        switch (type) {
            case ClusterType::kCompressed:
                return SubclusterType::kCompressed;
            case ClusterType::kZeroPlain:
                return SubclusterType::kZeroPlain;
            case ClusterType::kZeroAlloc:
                return SubclusterType::kZeroAlloc;
            case ClusterType::kNormal:
                return SubclusterType::kNormal;
            case ClusterType::kUnallocated:
                return SubclusterType::kUnallocatedPlain;
        }
        return SubclusterType::kInvalid;
    }
    if (type == ClusterType::kCompressed) return SubclusterType::kCompressed;
    if (subcluster >= kSubclustersPerCluster) return SubclusterType::kInvalid;
    const uint64_t alloc_bit = uint64_t{1} << subcluster;
    const uint64_t zero_bit = uint64_t{1} << (subcluster + 32);
    if (type == ClusterType::kNormal) {
        // Any subcluster both allocated and zero invalidates the whole entry.
        if ((e.bitmap >> 32) & e.bitmap) return SubclusterType::kInvalid;
        if (e.bitmap & zero_bit) return SubclusterType::kZeroAlloc;
        if (e.bitmap & alloc_bit) return SubclusterType::kNormal;
        return SubclusterType::kUnallocatedAlloc;
    }
    if (e.bitmap & kSubclusterAllocMask) return SubclusterType::kInvalid;
    if (e.bitmap & zero_bit) return SubclusterType::kZeroPlain;
    return SubclusterType::kUnallocatedPlain;
}

Status validate_l2_entry(const L2Entry& e, const Geometry& geometry, const L2Context& context,
                         uint64_t index) {
    if (e.compressed) {
        if (e.copied)
            return corrupt_error(l2_label(index, e, geometry) + " is compressed with COPIED set");
        if (context.external_data_file) {
            return corrupt_error(l2_label(index, e, geometry) +
                                 " is compressed in an image with an external data file");
        }
        if (e.host_offset > kMaxHostOffset) {
            return corrupt_error(l2_label(index, e, geometry) + " compressed offset " +
                                 hex_string(e.host_offset) + " has bits above 55 set");
        }
        if (geometry.extended_l2 && e.bitmap != 0) {
            return corrupt_error(l2_label(index, e, geometry) + " is compressed with bitmap " +
                                 hex_string(e.bitmap));
        }
        return ok_status();
    }
    if (e.reserved_bits != 0) {
        return corrupt_error(l2_label(index, e, geometry) + " has reserved bits " +
                             hex_string(e.reserved_bits) + " set");
    }
    if (!geometry.is_cluster_aligned(e.host_offset)) {
        return corrupt_error(l2_label(index, e, geometry) + " host offset " +
                             hex_string(e.host_offset) + " is not cluster aligned");
    }
    if (e.zero && context.version < kVersion3) {
        return corrupt_error(l2_label(index, e, geometry) +
                             " has the zero flag in a version 2 image");
    }
    if (geometry.extended_l2) {
        if (const uint64_t both = (e.bitmap >> 32) & e.bitmap; both != 0) {
            return corrupt_error(l2_label(index, e, geometry) + " bitmap " + hex_string(e.bitmap) +
                                 " marks subclusters both allocated and zero (" + hex_string(both) +
                                 ")");
        }
        if (classify_l2_entry(e, geometry, context.external_data_file) ==
                ClusterType::kUnallocated &&
            (e.bitmap & kSubclusterAllocMask) != 0) {
            return corrupt_error(l2_label(index, e, geometry) + " bitmap " + hex_string(e.bitmap) +
                                 " allocates subclusters of an unallocated cluster");
        }
    }
    return ok_status();
}

Extent compressed_read_extent(const L2Entry& entry) {
    // host_offset < 2^61 and the length at most 2^13 sectors: no overflow.
    const uint64_t sectors = entry.additional_sectors + 1;
    return Extent{entry.host_offset,
                  sectors * kSectorSize - (entry.host_offset & (kSectorSize - 1))};
}

ClusterRange compressed_host_clusters(const L2Entry& entry, const Geometry& geometry) {
    const Extent extent = compressed_read_extent(entry);
    return ClusterRange{extent.offset >> geometry.cluster_bits,
                        (extent.offset + extent.length - 1) >> geometry.cluster_bits};
}

Result<L2Entry> make_compressed_entry(uint64_t host_offset, uint64_t compressed_length,
                                      const Geometry& geometry) {
    if (compressed_length == 0) {
        return invalid_argument("qcow2: compressed length 0");
    }
    const uint32_t x = compressed_offset_bits(geometry);
    if ((host_offset >> x) != 0 || host_offset > kMaxHostOffset) {
        return invalid_argument("qcow2: compressed host offset " + hex_string(host_offset) +
                                " does not fit the descriptor (cluster_bits " +
                                u64s(geometry.cluster_bits) + ")");
    }
    uint64_t last_byte = 0;
    if (!checked_add(host_offset, compressed_length - 1, &last_byte)) {
        return invalid_argument("qcow2: compressed length " + u64s(compressed_length) +
                                " overflows");
    }
    const uint64_t additional = last_byte / kSectorSize - host_offset / kSectorSize;
    if (additional > max_additional_sectors(geometry)) {
        return invalid_argument("qcow2: compressed length " + u64s(compressed_length) + " at " +
                                hex_string(host_offset) + " needs " + u64s(additional) +
                                " additional sectors, limit " +
                                u64s(max_additional_sectors(geometry)));
    }
    L2Entry e;
    e.compressed = true;
    e.host_offset = host_offset;
    e.additional_sectors = additional;
    return e;
}

}  // namespace coblock::qcow2
