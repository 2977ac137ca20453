// Initial metadata layout of a new qcow2 image.
// Pure. Implements specs/qcow2-notes.md §3.1 (what qemu-img create writes).
#include "formats/qcow2/layout.h"

#include <algorithm>

#include "formats/qcow2/refcount.h"

namespace coblock::qcow2 {

namespace {

std::string u64s(uint64_t v) {
    return std::to_string(v);
}

}  // namespace

Status validate_create_options(const CreateOptions& o) {
    if (o.version != kVersion2 && o.version != kVersion3) {
        return invalid_argument("qcow2: version " + u64s(o.version) + " must be 2 or 3");
    }
    if (o.cluster_bits < kMinClusterBits || o.cluster_bits > kMaxClusterBits) {
        return invalid_argument("qcow2: cluster_size " +
                                (o.cluster_bits < 64 ? u64s(uint64_t{1} << o.cluster_bits)
                                                     : "2^" + u64s(o.cluster_bits)) +
                                " must be a power of two between 512 and 2097152");
    }
    if (o.refcount_order > kMaxRefcountOrder) {
        return invalid_argument("qcow2: refcount_order " + u64s(o.refcount_order) +
                                " exceeds limit " + u64s(kMaxRefcountOrder));
    }
    if (o.version == kVersion2) {
        if (o.refcount_order != kDefaultRefcountOrder) {
            return invalid_argument("qcow2: refcount_bits " + u64s(1u << o.refcount_order) +
                                    " requires version 3 (compat=1.1)");
        }
        if (o.lazy_refcounts) return invalid_argument("qcow2: lazy_refcounts requires version 3");
        if (o.data_file) return invalid_argument("qcow2: data_file requires version 3");
        if (o.compression_type != kCompressionDeflate) {
            return invalid_argument("qcow2: compression_type " + u64s(o.compression_type) +
                                    " requires version 3");
        }
        if (o.extended_l2) return invalid_argument("qcow2: extended_l2 requires version 3");
    }
    if (o.extended_l2 && o.cluster_bits < kMinExtendedL2ClusterBits) {
        return invalid_argument("qcow2: extended_l2 requires cluster_size >= 16384, got " +
                                u64s(uint64_t{1} << o.cluster_bits));
    }
    if (o.compression_type != kCompressionDeflate && o.compression_type != kCompressionZstd) {
        return invalid_argument("qcow2: compression_type " + u64s(o.compression_type) +
                                " is not supported");
    }
    if (o.backing_format && !o.backing_file) {
        return invalid_argument("qcow2: backing_format requires a backing file");
    }
    if (o.backing_file && o.backing_file->size() > kMaxBackingFileNameLength) {
        return invalid_argument("qcow2: backing file name length " + u64s(o.backing_file->size()) +
                                " exceeds limit " + u64s(kMaxBackingFileNameLength));
    }
    if (o.backing_format && o.backing_format->size() > kMaxBackingFormatLength) {
        return invalid_argument("qcow2: backing format name length " +
                                u64s(o.backing_format->size()) + " exceeds limit " +
                                u64s(kMaxBackingFormatLength));
    }
    if (o.data_file_raw && !o.data_file) {
        return invalid_argument("qcow2: data_file_raw requires data_file");
    }
    if (o.data_file_raw && o.backing_file) {
        return invalid_argument("qcow2: data_file_raw cannot be used with a backing file");
    }
    if (o.size % kSectorSize != 0) {
        return invalid_argument("qcow2: image size " + u64s(o.size) + " is not a multiple of 512");
    }
    const Geometry geometry{o.cluster_bits, o.extended_l2, o.refcount_order};
    if (o.size > max_virtual_size(geometry)) {
        return invalid_argument("qcow2: image size " + u64s(o.size) + " exceeds limit " +
                                u64s(max_virtual_size(geometry)) + " for cluster_size " +
                                u64s(geometry.cluster_size()));
    }
    return ok_status();
}

Result<InitialLayout> build_initial_layout(const CreateOptions& o) {
    TRY(validate_create_options(o));
    const Geometry geometry{o.cluster_bits, o.extended_l2, o.refcount_order};
    const uint64_t cluster_size = geometry.cluster_size();

    const uint64_t l1_size = l1_entries_for_size(geometry, o.size);  // <= kMaxL1Entries
    const uint64_t l1_bytes = l1_size * 8;
    const uint64_t l1_clusters = div_round_up(l1_bytes, cluster_size);

    // The refcount blocks must count themselves and the table, which must in
    // turn point to every block: grow both until they stop changing.
    uint64_t table_clusters = 1;
    uint64_t block_count = 1;
    for (;;) {
        const uint64_t metadata = 1 + table_clusters + block_count + l1_clusters;
        const uint64_t blocks = refcount_blocks_for_clusters(geometry, metadata);
        const uint64_t table = div_round_up(blocks * 8, cluster_size);
        if (blocks == block_count && table == table_clusters) break;
        block_count = std::max(blocks, block_count);
        table_clusters = std::max(table, table_clusters);
    }
    const uint64_t metadata_clusters = 1 + table_clusters + block_count + l1_clusters;

    InitialLayout layout;
    layout.refcount_table = Extent{cluster_size, table_clusters * cluster_size};
    layout.refcount_blocks =
        Extent{(1 + table_clusters) * cluster_size, block_count * cluster_size};
    layout.l1_table =
        Extent{l1_size != 0 ? (1 + table_clusters + block_count) * cluster_size : 0, l1_bytes};

    Header& h = layout.header.header;
    h.version = o.version;
    h.cluster_bits = o.cluster_bits;
    h.size = o.size;
    h.l1_size = static_cast<uint32_t>(l1_size);
    h.l1_table_offset = layout.l1_table.offset;
    h.refcount_table_offset = layout.refcount_table.offset;
    h.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
    if (o.version == kVersion2) {
        h.header_length = kHeaderV2Length;
    } else {
        h.header_length = kHeaderV3QemuLength;
        h.refcount_order = o.refcount_order;
        h.compression_type = o.compression_type;
        if (o.data_file) h.incompatible_features |= kIncompatDataFile;
        if (o.compression_type != kCompressionDeflate) {
            h.incompatible_features |= kIncompatCompression;
        }
        if (o.extended_l2) h.incompatible_features |= kIncompatExtendedL2;
        if (o.lazy_refcounts) h.compatible_features |= kCompatLazyRefcounts;
        if (o.data_file_raw) h.autoclear_features |= kAutoclearDataFileRaw;
    }
    layout.header.extensions.backing_format = o.backing_format;
    layout.header.extensions.data_file = o.data_file;
    layout.header.backing_file = o.backing_file;
    ASSIGN_OR_RETURN(layout.header, normalize_for_rewrite(std::move(layout.header)));
    if (Status valid = validate_header(layout.header.header); !valid.ok()) {
        return make_error(ErrorKind::kInternal,
                          "qcow2: built an invalid header: " + valid.error().message);
    }

    ASSIGN_OR_RETURN(std::vector<std::byte> cluster0, encode_image_header(layout.header));
    layout.writes.push_back(LayoutWrite{0, std::move(cluster0)});

    std::vector<uint64_t> table(layout.refcount_table.length / 8, 0);
    for (uint64_t i = 0; i < block_count; ++i) {
        table[i] = encode_refcount_table_entry(
            RefcountTableEntry{layout.refcount_blocks.offset + i * cluster_size, 0});
    }
    layout.writes.push_back(LayoutWrite{layout.refcount_table.offset, encode_be64_table(table)});

    std::vector<std::byte> blocks(layout.refcount_blocks.length);
    for (uint64_t cluster = 0; cluster < metadata_clusters; ++cluster) {
        TRY(set_refcount(blocks, cluster, o.refcount_order, 1));
    }
    layout.writes.push_back(LayoutWrite{layout.refcount_blocks.offset, std::move(blocks)});

    if (l1_size != 0) {
        layout.writes.push_back(
            LayoutWrite{layout.l1_table.offset, std::vector<std::byte>(l1_bytes)});
    }
    layout.file_size = layout.writes.back().offset + layout.writes.back().bytes.size();
    return layout;
}

}  // namespace coblock::qcow2
