// convert -l for qcow2: the snapshot's L1 table, then per subcluster the L2
// entry (validated as the driver validates it), then normal data, zeros,
// a decompressed cluster or the backing file (qcow2-notes.md §5, §11).
#include "tools/img/qcow2_snapshot_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "block/child.h"
#include "block/io.h"
#include "coroutine/run_sync.h"
#include "drivers/qcow2/qcow2_node.h"
#include "formats/qcow2/constants.h"
#include "formats/qcow2/header.h"
#include "formats/qcow2/l2_entry.h"

namespace coblock::img {

using qcow2::SubclusterType;

namespace {

// QEMU's QCOW_MAX_L1_SIZE: 32 MiB of L1 entries.
constexpr uint64_t kMaxL1Bytes = 32ull << 20;
// L2 tables kept for the whole convert: a snapshot's tables are read once
// each; 64 of them (4 MiB at 64 KiB clusters) cover 32 GiB of disk.
constexpr size_t kMaxCachedL2Tables = 64;

}  // namespace

Result<std::unique_ptr<Qcow2SnapshotReader>> Qcow2SnapshotReader::open(
    BlockNode* node, const qcow2::SnapshotEntry& snapshot) {
    auto reader = std::unique_ptr<Qcow2SnapshotReader>(new Qcow2SnapshotReader());
    reader->node_ = node;
    reader->size_ = node->size();
    if (node->file() == nullptr)
        return make_error(ErrorKind::kInvalidArgument, "qcow2 snapshot: node has no file");
    std::vector<std::byte> head(512);
    TRY(run_sync([&] { return reader->co_read_file(0, head.data(), head.size()); }));
    ASSIGN_OR_RETURN(qcow2::Header header, qcow2::decode_header(head));
    if (header.incompatible_features & qcow2::kIncompatDataFile)
        return make_error(ErrorKind::kUnsupported,
                          "qcow2 snapshot: images with an external data file are not supported");
    ASSIGN_OR_RETURN(reader->geom_, qcow2::make_geometry(header.cluster_bits,
                                                         (header.incompatible_features &
                                                          qcow2::kIncompatExtendedL2) != 0,
                                                         header.refcount_order));
    reader->version_ = header.version;
    reader->compression_type_ = header.compression_type;
    const uint64_t l1_bytes = uint64_t{snapshot.l1_size} * 8;
    if (l1_bytes > kMaxL1Bytes)
        return corrupt_error("qcow2 snapshot: L1 table of " + std::to_string(snapshot.l1_size) +
                             " entries exceeds 32 MiB");
    TRY(qcow2::validate_table_extent("snapshot L1 table", snapshot.l1_table_offset, l1_bytes,
                                     reader->geom_, node->file()->node()->size()));
    std::vector<std::byte> l1_raw(l1_bytes);
    TRY(run_sync([&] {
        return reader->co_read_file(snapshot.l1_table_offset, l1_raw.data(), l1_raw.size());
    }));
    ASSIGN_OR_RETURN(reader->l1_,
                     qcow2::decode_be64_table(l1_raw, snapshot.l1_size, "snapshot L1 table"));
    return reader;
}

// Reads past the end of the file return zeros, as the driver's reads do.
Status Qcow2SnapshotReader::co_read_file(uint64_t offset, std::byte* out, uint64_t len) {
    std::fill(out, out + len, std::byte{0});
    const uint64_t fsize = node_->file()->node()->size();
    if (offset >= fsize) return {};
    return co_child_pread(node_->file(), offset, out, std::min(len, fsize - offset));
}

Result<const std::vector<std::byte>*> Qcow2SnapshotReader::co_l2_table(uint64_t l2_offset) {
    auto it = l2_tables_.find(l2_offset);
    if (it != l2_tables_.end()) return &it->second;
    TRY(qcow2::validate_table_extent("snapshot L2 table", l2_offset, geom_.cluster_size(), geom_,
                                     node_->file()->node()->size()));
    std::vector<std::byte> table(geom_.cluster_size());
    TRY(co_read_file(l2_offset, table.data(), table.size()));
    if (l2_tables_.size() >= kMaxCachedL2Tables) l2_tables_.clear();
    return &l2_tables_.emplace(l2_offset, std::move(table)).first->second;
}

Result<Qcow2SnapshotReader::Lookup> Qcow2SnapshotReader::co_lookup(uint64_t offset) {
    Lookup result;
    const uint64_t l1_index = geom_.l1_index(offset);
    if (l1_index >= l1_.size()) return result;
    const qcow2::L1Entry l1 = qcow2::decode_l1_entry(l1_[l1_index]);
    if (geom_.offset_in_cluster(l1.l2_offset) != 0) {
        // qcow2_signal_corruption's text (the image is read-only, so QEMU
        // only reports it), printed once.
        if (!corruption_reported_) {
            std::fprintf(stderr,
                         "qcow2: Image is corrupt: L2 table offset %#llx unaligned (L1 index: "
                         "%#llx); further non-fatal corruption events will be suppressed\n",
                         static_cast<unsigned long long>(l1.l2_offset),
                         static_cast<unsigned long long>(l1_index));
            corruption_reported_ = true;
        }
        return Error{ErrorKind::kCorrupt, EIO,
                     "qcow2 snapshot: L2 table offset " + qcow2::hex_string(l1.l2_offset) +
                         " unaligned (L1 index " + std::to_string(l1_index) + ")",
                     std::nullopt};
    }
    TRY(qcow2::validate_l1_entry(l1, geom_, l1_index));
    if (l1.l2_offset == 0) return result;
    ASSIGN_OR_RETURN(const std::vector<std::byte>* table, co_l2_table(l1.l2_offset));
    const uint64_t l2_index = geom_.l2_index(offset);
    ASSIGN_OR_RETURN(qcow2::RawL2Entry raw,
                     qcow2::read_l2_entry(*table, l2_index, geom_.extended_l2));
    result.entry = qcow2::decode_l2_entry(raw.word, raw.bitmap, geom_);
    qcow2::L2Context context;
    context.version = version_;
    TRY(qcow2::validate_l2_entry(result.entry, geom_, context, l2_index));
    const uint32_t subcluster =
        static_cast<uint32_t>(geom_.offset_in_cluster(offset) / geom_.subcluster_size());
    result.type = qcow2::subcluster_type(result.entry, geom_, subcluster);
    if (result.type == SubclusterType::kInvalid)
        return corrupt_error("qcow2 snapshot: invalid L2 entry for guest offset " +
                             qcow2::hex_string(offset));
    return result;
}

Status Qcow2SnapshotReader::co_read(uint64_t offset, uint64_t bytes, std::byte* buf) {
    const uint64_t sub = geom_.subcluster_size();
    std::vector<std::byte> cluster;
    while (bytes > 0) {
        const uint64_t n = std::min(bytes, sub - offset % sub);
        ASSIGN_OR_RETURN(Lookup lookup, co_lookup(offset));
        switch (lookup.type) {
            case SubclusterType::kNormal:
                TRY(co_read_file(lookup.entry.host_offset + geom_.offset_in_cluster(offset), buf,
                                 n));
                break;
            case SubclusterType::kCompressed: {
                const qcow2::Extent extent = qcow2::compressed_read_extent(lookup.entry);
                std::vector<std::byte> packed(extent.length);
                TRY(co_read_file(extent.offset, packed.data(), packed.size()));
                cluster.resize(geom_.cluster_size());
                TRY(qcow2drv::decompress_cluster(compression_type_, packed.data(), packed.size(),
                                                 cluster.data(), cluster.size()));
                std::memcpy(buf, cluster.data() + geom_.offset_in_cluster(offset), n);
                break;
            }
            case SubclusterType::kUnallocatedPlain:
            case SubclusterType::kUnallocatedAlloc: {
                std::fill(buf, buf + n, std::byte{0});
                BdrvChild* backing = node_->backing();
                const uint64_t backing_size = backing ? backing->node()->size() : 0;
                if (offset < backing_size)
                    TRY(co_child_pread(backing, offset, buf, std::min(n, backing_size - offset)));
                break;
            }
            default:  // zero subclusters
                std::fill(buf, buf + n, std::byte{0});
                break;
        }
        offset += n;
        bytes -= n;
        buf += n;
    }
    return {};
}

Result<BlockStatus> Qcow2SnapshotReader::co_block_status(uint64_t offset, uint64_t bytes) {
    const uint64_t sub = geom_.subcluster_size();
    auto flags_of = [&](SubclusterType type) -> uint32_t {
        switch (type) {
            case SubclusterType::kNormal:
            case SubclusterType::kCompressed:
                return kStatusData | kStatusAllocated;
            case SubclusterType::kUnallocatedPlain:
            case SubclusterType::kUnallocatedAlloc:
                return node_->backing() ? 0u : uint32_t{kStatusZero};
            default:
                return kStatusZero | kStatusAllocated;
        }
    };
    BlockStatus status;
    uint64_t pos = offset;
    const uint64_t end = std::min(offset + bytes, size_);
    while (pos < end) {
        ASSIGN_OR_RETURN(Lookup lookup, co_lookup(pos));
        const uint32_t flags = flags_of(lookup.type);
        if (pos == offset)
            status.flags = flags;
        else if (flags != status.flags)
            break;
        pos = std::min(end, (pos / sub + 1) * sub);
    }
    status.bytes = pos - offset;
    return status;
}

}  // namespace coblock::img
