#include "drivers/qcow/qcow_node.h"

#include <algorithm>
#include <cstring>

#include "block/io.h"
#include "drivers/qcow/qcow_compress.h"
#include "formats/bytes.h"

namespace coblock::qcow {
namespace {

Error qemu_error(int err, std::string message) {
    ErrorKind kind = err == ENOTSUP ? ErrorKind::kUnsupported : ErrorKind::kInvalidArgument;
    return Error{kind, err, std::move(message), std::nullopt};
}

// The checks QEMU 7.2's qcow_open makes, in its order and with its
// messages, so tools print what qemu-img/qemu-io print. validate_header()
// then adds the stricter checks with messages naming field and value.
// `metadata_only` (qemu-img info) lets an AES image open: no data is read.
Status check_header_like_qemu(const Header& h, bool metadata_only) {
    if (h.magic != kMagic) return qemu_error(EINVAL, "Image not in qcow format");
    if (h.version != kVersion) {
        std::string message =
            "qcow (v1) does not support qcow version " + std::to_string(h.version);
        // QEMU's hint, printed on the next line (the Error has no hint field).
        if (h.version == 2 || h.version == 3) message += "\nTry the 'qcow2' driver instead.";
        return qemu_error(ENOTSUP, message);
    }
    if (h.size < kMinSize)
        return qemu_error(EINVAL, "Image size is too small (must be at least 2 bytes)");
    if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits)
        return qemu_error(EINVAL, "Cluster size must be between 512 and 64k");
    if (h.l2_bits < kMinL2Bits || h.l2_bits > kMaxL2Bits)
        return qemu_error(EINVAL, "L2 table size must be between 512 and 64k");
    if (h.crypt_method > kCryptAes)
        return qemu_error(EINVAL, "invalid encryption method in qcow header");
    // AES images are refused before anything else is read (specs/qcow-v1.md
    // §8), unless only metadata is wanted: qemu-img info shows them.
    if (!metadata_only) TRY(check_supported(h));
    const uint32_t shift = h.cluster_bits + h.l2_bits;
    uint64_t end = 0;
    if (!checked_add(h.size, uint64_t{1} << shift, &end))
        return qemu_error(EINVAL, "Image too large");
    if (((h.size + (uint64_t{1} << shift) - 1) >> shift) > kMaxL1Size)
        return qemu_error(EINVAL, "Image too large");
    if (h.backing_file_offset != 0 && h.backing_file_size > kMaxBackingFileSize)
        return qemu_error(EINVAL, "Backing file name too long");
    return {};
}

// A relative backing file name is relative to the image's directory
// (QEMU's bdrv_get_full_backing_filename).
std::string full_backing_filename(const std::string& image, const std::string& backing) {
    if (backing.empty() || backing[0] == '/' || backing.find(':') != std::string::npos)
        return backing;
    const size_t slash = image.rfind('/');
    if (slash == std::string::npos) return backing;
    return image.substr(0, slash + 1) + backing;
}

Error io_error(std::string message) {
    return Error{ErrorKind::kCorrupt, EIO, std::move(message), std::nullopt};
}

}  // namespace

// ---- Open ---------------------------------------------------------------------

Status QcowNode::co_init(OpenContext& ctx) {
    ASSIGN_OR_RETURN(file_, ctx.co_open_child(*this, "file", kRoleFile, ctx.filename(),
                                              /*probe_format=*/false));
    std::byte head[kHeaderSize];
    TRY(co_read_file(0, head, kHeaderSize));
    ASSIGN_OR_RETURN(header_, decode_header(ByteSpan(head, kHeaderSize)));
    TRY(check_header_like_qemu(header_, ctx.flags().no_io));
    encrypted_ = is_encrypted(header_);
    TRY(validate_header(header_));
    ASSIGN_OR_RETURN(geometry_, header_geometry(header_));

    // Stricter than QEMU (which reads zeros there): the L1 table and the
    // backing file name must lie inside the file.
    const uint64_t file_size = file_->node()->size();
    ASSIGN_OR_RETURN(Extent l1_extent, l1_table_extent(header_));
    if (l1_extent.offset + l1_extent.length > file_size)
        return corrupt_error("qcow: l1_table_offset " + detail::hex(l1_extent.offset) + " with " +
                             std::to_string(geometry_.l1_size) + " entries ends beyond the file (" +
                             std::to_string(file_size) + " bytes)");
    std::vector<std::byte> l1_bytes(l1_extent.length);
    TRY(co_read_file(l1_extent.offset, l1_bytes.data(), l1_bytes.size()));
    ASSIGN_OR_RETURN(l1_, parse_l1_table(geometry_, l1_bytes));

    ASSIGN_OR_RETURN(std::optional<Extent> name_extent, backing_file_name_extent(header_));
    if (name_extent) {
        if (name_extent->offset + name_extent->length > file_size)
            return corrupt_error("qcow: backing file name at backing_file_offset " +
                                 detail::hex(name_extent->offset) + " length " +
                                 std::to_string(name_extent->length) + " ends beyond the file (" +
                                 std::to_string(file_size) + " bytes)");
        std::vector<std::byte> name(name_extent->length);
        TRY(co_read_file(name_extent->offset, name.data(), name.size()));
        ASSIGN_OR_RETURN(backing_name_, parse_backing_file_name(header_, name));
    }

    set_size(virtual_size(header_));
    mutable_limits().request_alignment = kSectorSize;
    set_supported_write_flags(kReqWriteCompressed);
    cluster_cache_.resize(geometry_.cluster_size());

    if (!backing_name_.empty() && !ctx.flags().no_backing) {
        // backing=null (an empty reference) opens the image without it.
        if (auto reference = ctx.options().get("backing"); reference && reference->empty()) {
            ctx.options().erase("backing");
        } else {
            const std::string& image =
                ctx.filename().empty() ? file_->node()->filename() : ctx.filename();
            auto edge = ctx.co_open_child(*this, "backing", kRoleBacking,
                                          full_backing_filename(image, backing_name_),
                                          /*probe_format=*/true);
            if (!edge.ok()) return std::move(edge).error();
        }
    }
    return {};
}

Status QcowNode::check_not_encrypted() const {
    if (encrypted_) return check_supported(header_);
    return {};
}

// ---- File helpers -----------------------------------------------------------------

uint64_t QcowNode::file_length() const {
    // QEMU's bdrv_getlength counts whole sectors.
    return align_up(file_->node()->size(), kSectorSize);
}

Status QcowNode::co_read_file(uint64_t offset, void* buf, uint64_t bytes) {
    const uint64_t size = file_->node()->size();
    const uint64_t readable = offset >= size ? 0 : std::min(bytes, size - offset);
    if (readable < bytes) std::memset(static_cast<std::byte*>(buf) + readable, 0, bytes - readable);
    if (readable == 0) return {};
    return co_child_pread(file_, offset, buf, readable);
}

Status QcowNode::co_write_file_sync(uint64_t offset, const void* buf, uint64_t bytes) {
    TRY(co_child_pwrite(file_, offset, buf, bytes));
    return co_child_flush(file_);
}

Status QcowNode::co_read_backing(uint64_t guest_offset, uint64_t bytes, IoVector& qiov) {
    BdrvChild* backing = this->backing();
    const uint64_t size = backing ? backing->node()->size() : 0;
    const uint64_t readable = guest_offset >= size ? 0 : std::min(bytes, size - guest_offset);
    if (readable < bytes) qiov.fill(readable, 0, bytes - readable);
    if (readable == 0) return {};
    if (readable == qiov.size()) return co_child_preadv(backing, guest_offset, readable, qiov);
    IoVector part = qiov.slice(0, readable);
    return co_child_preadv(backing, guest_offset, readable, part);
}

// ---- Metadata (lock held) ------------------------------------------------------

Result<std::vector<uint64_t>*> QcowNode::co_load_l2(uint64_t l2_offset) {
    if (std::vector<uint64_t>* table = l2_cache_.find(l2_offset)) return table;
    // QEMU reads a table past the end of the file as zeros; name it instead.
    if (const uint64_t size = file_->node()->size(); l2_offset >= size)
        return corrupt_error("qcow: L2 table at " + detail::hex(l2_offset) +
                                 " starts beyond the end of the file (" + std::to_string(size) +
                                 " bytes)",
                             l2_offset);
    coblock::co_debug_event(file_, BlkdebugEvent::kL2Load);
    std::vector<std::byte> bytes(geometry_.l2_table_bytes());
    TRY(co_read_file(l2_offset, bytes.data(), bytes.size()));
    ASSIGN_OR_RETURN(std::vector<uint64_t> table, parse_l2_table(geometry_, bytes));
    return &l2_cache_.insert(l2_offset, std::move(table));
}

Result<QcowNode::L2Slot> QcowNode::co_find_l2(uint64_t guest_offset, bool allocate) {
    const uint64_t l1_index = geometry_.l1_index(guest_offset);
    if (l1_index >= l1_.size())
        return make_error(ErrorKind::kInternal, "qcow: guest offset " + detail::hex(guest_offset) +
                                                    " lies beyond the L1 table");
    L2Slot slot;
    slot.index = geometry_.l2_index(guest_offset);
    ASSIGN_OR_RETURN(L1Entry l1, decode_l1_entry(geometry_, l1_[l1_index]));
    if (l1.allocated()) {
        slot.l2_offset = l1.l2_table_offset;
        if (auto loaded = co_load_l2(slot.l2_offset); !loaded.ok())
            return std::move(loaded).error();
        return slot;
    }
    if (!allocate) return slot;
    // A new, zeroed L2 table at the end of the file; on disk before the L1
    // entry that points to it.
    const uint64_t l2_offset = align_up(file_length(), geometry_.cluster_size());
    coblock::co_debug_event(file_, BlkdebugEvent::kL2Load);
    std::vector<std::byte> zeros(geometry_.l2_table_bytes());
    TRY(co_write_file_sync(l2_offset, zeros.data(), zeros.size()));
    ASSIGN_OR_RETURN(uint64_t raw, encode_l1_entry(geometry_, L1Entry{l2_offset}));
    coblock::co_debug_event(file_, BlkdebugEvent::kL1Update);
    const auto entry = encode_table_entry(raw);
    TRY(co_write_file_sync(header_.l1_table_offset + l1_index * kTableEntrySize, entry.data(),
                           entry.size()));
    l1_[l1_index] = raw;
    l2_cache_.insert(l2_offset, std::vector<uint64_t>(geometry_.l2_entries(), 0));
    slot.l2_offset = l2_offset;
    return slot;
}

Result<L2Entry> QcowNode::co_lookup(uint64_t guest_offset, L2Slot* slot, bool allocate) {
    ASSIGN_OR_RETURN(*slot, co_find_l2(guest_offset, allocate));
    if (slot->l2_offset == 0) return L2Entry{};
    ASSIGN_OR_RETURN(std::vector<uint64_t> * table, co_load_l2(slot->l2_offset));
    return decode_l2_entry(geometry_, (*table)[slot->index]);
}

Status QcowNode::co_decompress(const L2Entry& entry) {
    if (cached_coffset_ == entry.offset) return {};
    if (const uint64_t size = file_->node()->size(); entry.offset >= size)
        return corrupt_error(
            "qcow: compressed cluster at host offset " + detail::hex(entry.offset) +
                " starts beyond the end of the file (" + std::to_string(size) + " bytes)",
            entry.offset);
    coblock::co_debug_event(file_, BlkdebugEvent::kReadCompressed);
    std::vector<std::byte> compressed(entry.compressed_size);
    TRY(co_read_file(entry.offset, compressed.data(), compressed.size()));
    cached_coffset_ = kNoCachedCluster;
    TRY(decompress_cluster(compressed, cluster_cache_));
    cached_coffset_ = entry.offset;
    return {};
}

Status QcowNode::co_write_l2_entry(const L2Slot& slot, uint64_t raw, bool compressed) {
    coblock::co_debug_event(
        file_, compressed ? BlkdebugEvent::kL2UpdateCompressed : BlkdebugEvent::kL2Update);
    const auto bytes = encode_table_entry(raw);
    TRY(co_write_file_sync(slot.l2_offset + slot.index * kTableEntrySize, bytes.data(),
                           bytes.size()));
    ASSIGN_OR_RETURN(std::vector<uint64_t> * table, co_load_l2(slot.l2_offset));
    (*table)[slot.index] = raw;
    return {};
}

// Moves a compressed cluster (`old`) that a normal write of `bytes` at
// `guest_offset` (within the cluster) hits to a new cluster at the end of
// the file, as QEMU does: the decompressed contents with the guest data over
// them, written and flushed before the L2 entry points at them.
Status QcowNode::co_allocate_cluster(uint64_t guest_offset, uint64_t bytes, IoVector& part,
                                     const L2Slot& slot, const L2Entry& old) {
    const uint64_t cluster_size = geometry_.cluster_size();
    const uint64_t in_cluster = geometry_.offset_in_cluster(guest_offset);
    coblock::co_debug_event(file_, BlkdebugEvent::kClusterAlloc);
    AlignedBuffer buffer;
    IoVector whole;
    if (bytes == cluster_size) {
        whole = part;
    } else {
        buffer = AlignedBuffer(cluster_size);
        TRY(co_decompress(old));
        std::memcpy(buffer.data(), cluster_cache_.data(), cluster_size);
        part.copy_to(0, buffer.data() + in_cluster, bytes);
        whole = buffer.iov();
    }
    const uint64_t host = align_up(file_length(), cluster_size);
    ASSIGN_OR_RETURN(uint64_t raw,
                     encode_l2_entry(geometry_, L2Entry{ClusterType::kNormal, host, 0}));
    coblock::co_debug_event(file_, BlkdebugEvent::kWriteAio);
    TRY(co_child_pwritev(file_, host, cluster_size, whole));
    TRY(co_child_flush(file_));
    return co_write_l2_entry(slot, raw, /*compressed=*/false);
}

// ---- Guest I/O ---------------------------------------------------------------------

uint64_t QcowNode::run_bytes(uint64_t pos, uint64_t max, const L2Slot& slot, const L2Entry& first) {
    const uint64_t cluster_size = geometry_.cluster_size();
    uint64_t len = std::min(max, geometry_.bytes_to_cluster_end(pos));
    if (first.type == ClusterType::kCompressed) return len;
    if (slot.l2_offset == 0) {
        // No L2 table: all of this L1 entry's range is unallocated.
        const uint64_t range_end = ((pos >> geometry_.l1_shift()) + 1) << geometry_.l1_shift();
        return std::min(max, range_end - pos);
    }
    const std::vector<uint64_t>* table = l2_cache_.find(slot.l2_offset);
    if (table == nullptr) return len;  // not reached: the lookup just cached it
    uint64_t expected = first.type == ClusterType::kNormal ? first.offset + cluster_size : 0;
    for (uint64_t index = slot.index + 1; len < max && index < table->size(); ++index) {
        // A normal entry is its host offset, so equality means "normal and
        // contiguous"; unallocated runs continue over zero entries.
        if ((*table)[index] != expected) break;
        if (first.type == ClusterType::kNormal) expected += cluster_size;
        len = std::min(max, len + cluster_size);
    }
    return len;
}

Status QcowNode::co_cluster_base(uint64_t cluster_start, AlignedBuffer& buffer) {
    buffer = AlignedBuffer(geometry_.cluster_size());
    if (!backing()) {
        std::memset(buffer.data(), 0, buffer.size());
        return {};
    }
    IoVector iov = buffer.iov();
    return co_read_backing(cluster_start, buffer.size(), iov);
}

// Allocates the unallocated clusters under [guest_offset, +bytes) (all in
// the L2 table of `slot`, starting at slot.index) contiguously at the end of
// the file, writes them in one request — the guest data, with the rest of
// the first and last cluster copied from the backing node (zeros without
// one) — flushes, then writes their L2 entries in one request and flushes.
// QEMU allocates the same offsets cluster by cluster and does no
// copy-on-write from the backing file (specs/qcow-v1.md §7); the result is
// what a user expects and QEMU reads it the same way.
Status QcowNode::co_allocate_run(uint64_t guest_offset, uint64_t bytes, IoVector& part,
                                 const L2Slot& slot) {
    const uint64_t cluster_size = geometry_.cluster_size();
    const uint64_t start = geometry_.cluster_start(guest_offset);
    const uint64_t head = guest_offset - start;
    const uint64_t count = (head + bytes + cluster_size - 1) / cluster_size;
    const uint64_t total = count * cluster_size;
    const uint64_t tail = total - head - bytes;
    for (uint64_t i = 0; i < count; ++i)
        coblock::co_debug_event(file_, BlkdebugEvent::kClusterAlloc);

    AlignedBuffer first_base;
    AlignedBuffer last_base;
    IoVector whole;
    if (head == 0 && tail == 0) {
        whole = part;
    } else {
        if (head > 0 || count == 1) TRY(co_cluster_base(start, first_base));
        if (tail > 0 && count > 1)
            TRY(co_cluster_base(start + (count - 1) * cluster_size, last_base));
        if (head > 0) whole.append(first_base.data(), head);
        whole.append(part);
        if (tail > 0) {
            AlignedBuffer& last = count == 1 ? first_base : last_base;
            whole.append(last.data() + cluster_size - tail, tail);
        }
    }

    const uint64_t host = align_up(file_length(), cluster_size);
    std::vector<uint64_t> entries(count);
    std::vector<std::byte> encoded;
    encoded.reserve(count * kTableEntrySize);
    for (uint64_t i = 0; i < count; ++i) {
        ASSIGN_OR_RETURN(
            entries[i],
            encode_l2_entry(geometry_, L2Entry{ClusterType::kNormal, host + i * cluster_size, 0}));
        const auto bytes_of = encode_table_entry(entries[i]);
        encoded.insert(encoded.end(), bytes_of.begin(), bytes_of.end());
    }
    coblock::co_debug_event(file_, BlkdebugEvent::kWriteAio);
    TRY(co_child_pwritev(file_, host, total, whole));
    TRY(co_child_flush(file_));
    coblock::co_debug_event(file_, BlkdebugEvent::kL2Update);
    TRY(co_write_file_sync(slot.l2_offset + slot.index * kTableEntrySize, encoded.data(),
                           encoded.size()));
    ASSIGN_OR_RETURN(std::vector<uint64_t> * table, co_load_l2(slot.l2_offset));
    std::copy(entries.begin(), entries.end(), table->begin() + slot.index);
    return {};
}

// ---- Guest I/O ---------------------------------------------------------------------

Status QcowNode::co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) {
    TRY(check_not_encrypted());
    uint64_t done = 0;
    while (done < bytes) {
        const uint64_t pos = offset + done;
        L2Entry entry;
        uint64_t n = 0;
        {
            CoMutexGuard guard(lock_);
            L2Slot slot;
            ASSIGN_OR_RETURN(entry, co_lookup(pos, &slot, /*allocate=*/false));
            n = run_bytes(pos, bytes - done, slot, entry);
            if (entry.type == ClusterType::kCompressed) {
                TRY(co_decompress(entry));
                IoVector part = qiov.slice(done, n);
                part.copy_from(0, cluster_cache_.data() + geometry_.offset_in_cluster(pos), n);
            }
        }
        IoVector part = qiov.slice(done, n);
        if (entry.type == ClusterType::kUnallocated) {
            if (backing()) coblock::co_debug_event(file_, BlkdebugEvent::kReadBackingAio);
            TRY(co_read_backing(pos, n, part));
        } else if (entry.type == ClusterType::kNormal) {
            coblock::co_debug_event(file_, BlkdebugEvent::kReadAio);
            TRY(co_child_preadv(file_, entry.offset + geometry_.offset_in_cluster(pos), n, part));
        }
        done += n;
    }
    return {};
}

Status QcowNode::co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) {
    TRY(check_not_encrypted());
    if (flags & kReqWriteCompressed) return co_pwritev_compressed(offset, bytes, qiov);
    uint64_t done = 0;
    while (done < bytes) {
        const uint64_t pos = offset + done;
        uint64_t host = 0;
        uint64_t n = 0;
        {
            CoMutexGuard guard(lock_);
            cached_coffset_ = kNoCachedCluster;
            L2Slot slot;
            ASSIGN_OR_RETURN(L2Entry entry, co_lookup(pos, &slot, /*allocate=*/true));
            n = run_bytes(pos, bytes - done, slot, entry);
            if (entry.type == ClusterType::kUnallocated) {
                n = std::min(n, kMaxAllocationRun);
                IoVector part = qiov.slice(done, n);
                TRY(co_allocate_run(pos, n, part, slot));
                done += n;
                continue;
            }
            if (entry.type == ClusterType::kCompressed) {
                IoVector part = qiov.slice(done, n);
                TRY(co_allocate_cluster(pos, n, part, slot, entry));
                done += n;
                continue;
            }
            host = entry.offset + geometry_.offset_in_cluster(pos);
        }
        // Allocated clusters never move: rewrite them outside the lock.
        IoVector part = qiov.slice(done, n);
        coblock::co_debug_event(file_, BlkdebugEvent::kWriteAio);
        TRY(co_child_pwritev(file_, host, n, part));
        done += n;
    }
    return {};
}

// One whole cluster (or the zero-padded last cluster of the image), as
// QEMU's qcow_co_pwritev_compressed: deflated, appended at the end of the
// file on a 512-byte boundary, then the L2 entry. A cluster that does not
// shrink is written normally.
Status QcowNode::co_pwritev_compressed(uint64_t offset, uint64_t bytes, IoVector& qiov) {
    // qemu-img convert -c ends with an empty compressed write; QEMU 7.2's
    // qcow leaves the file as it is (qcow2 rounds it to whole sectors).
    if (bytes == 0) return {};
    const uint64_t cluster_size = geometry_.cluster_size();
    if (geometry_.offset_in_cluster(offset) != 0 ||
        (bytes != cluster_size && (bytes > cluster_size || offset + bytes != size())))
        return Error{ErrorKind::kInvalidArgument, EINVAL,
                     "qcow: compressed write of " + std::to_string(bytes) + " bytes at " +
                         std::to_string(offset) + " is not one whole cluster (" +
                         std::to_string(cluster_size) + " bytes)",
                     std::nullopt};
    // Clusters compress in parallel on the thread pool but are appended in
    // arrival order, so convert -c lays them out as qemu-img does.
    const uint64_t ticket = compressed_order_.take_ticket();
    std::vector<std::byte> plain(cluster_size);
    qiov.copy_to(0, plain.data(), bytes);
    std::optional<std::vector<std::byte>> compressed = co_compress_cluster(plain);
    CoSequencer::Turn turn = compressed_order_.wait_turn(ticket);
    if (!compressed) return co_pwritev(offset, bytes, qiov, 0);

    CoMutexGuard guard(lock_);
    cached_coffset_ = kNoCachedCluster;
    L2Slot slot;
    ASSIGN_OR_RETURN(L2Entry entry, co_lookup(offset, &slot, /*allocate=*/true));
    // QEMU would overwrite the allocated cluster's bytes in place without
    // updating its entry, corrupting the image; refuse instead.
    if (entry.type != ClusterType::kUnallocated)
        return io_error("qcow: compressed write at guest offset " + detail::hex(offset) +
                        " to a cluster that is already allocated");
    coblock::co_debug_event(file_, BlkdebugEvent::kClusterAlloc);
    const uint64_t host = file_length();
    ASSIGN_OR_RETURN(uint64_t raw, encode_l2_entry(geometry_, L2Entry{ClusterType::kCompressed,
                                                                      host, compressed->size()}));
    coblock::co_debug_event(file_, BlkdebugEvent::kWriteCompressed);
    TRY(co_write_file_sync(host, compressed->data(), compressed->size()));
    return co_write_l2_entry(slot, raw, /*compressed=*/true);
}

// ---- Block status ------------------------------------------------------------------

Result<BlockStatus> QcowNode::co_block_status(uint64_t offset, uint64_t bytes, bool) {
    CoMutexGuard guard(lock_);
    BlockStatus status;
    status.bytes = 0;
    ClusterType first_type = ClusterType::kUnallocated;
    uint64_t next_host = 0;
    // Extend the run while the clusters look the same (normal ones also
    // contiguous on the host), up to the end of the first L2 table's range
    // so one call loads at most one table.
    const uint64_t l2_range = uint64_t{1} << geometry_.l1_shift();
    const uint64_t limit = std::min(offset + bytes, (offset & ~(l2_range - 1)) + l2_range);
    uint64_t pos = offset;
    while (pos < limit) {
        const uint64_t n = std::min(limit - pos, geometry_.bytes_to_cluster_end(pos));
        L2Slot slot;
        ASSIGN_OR_RETURN(L2Entry entry, co_lookup(pos, &slot, /*allocate=*/false));
        const uint64_t host = entry.type == ClusterType::kNormal
                                  ? entry.offset + geometry_.offset_in_cluster(pos)
                                  : 0;
        if (pos == offset) {
            first_type = entry.type;
            if (entry.type == ClusterType::kNormal) {
                status.flags = kStatusData | kStatusOffsetValid;
                status.offset = host;
                status.file = file_->node();
            } else if (entry.type == ClusterType::kCompressed) {
                // QEMU 7.2 reports data without an offset (no "compressed" flag yet).
                status.flags = kStatusData;
            }
        } else if (entry.type != first_type ||
                   (entry.type == ClusterType::kNormal && host != next_host)) {
            break;
        }
        next_host = host + n;
        pos += n;
    }
    status.bytes = pos - offset;
    return status;
}

}  // namespace coblock::qcow
