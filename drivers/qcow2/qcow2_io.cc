// Guest I/O: mapping lookups, reads (normal, zero, unallocated via the
// backing file, compressed), writes in place and with allocation and
// copy-on-write, zero writes, discards, block status, flush and truncate.
#include <algorithm>
#include <utility>

#include "block/io.h"
#include "drivers/qcow2/qcow2_node.h"
#include "formats/qcow2/header.h"
#include "formats/qcow2/refcount.h"

namespace coblock::qcow2drv {

using qcow2::hex_string;
using qcow2::SubclusterType;

namespace {

constexpr uint64_t kAllAllocBits = qcow2::kSubclusterAllocMask;
constexpr uint64_t kAllZeroBits = qcow2::kSubclusterZeroMask;

bool entry_in_place(const qcow2::L2Entry& e, const qcow2::Geometry& g) {
    if (!e.copied || e.compressed || e.host_offset == 0) return false;
    if (g.extended_l2) return e.bitmap == kAllAllocBits;
    return !e.zero;
}

}  // namespace

Status Qcow2Node::read_file_padded(uint64_t offset, std::byte* out, uint64_t len) {
    std::fill(out, out + len, std::byte{0});
    const uint64_t fsize = file_->node()->size();
    if (offset >= fsize) return {};
    return co_child_pread(file_, offset, out, std::min(len, fsize - offset));
}

Result<Mapping> Qcow2Node::get_mapping(uint64_t offset, uint64_t max_bytes) {
    Mapping m;
    // One lookup stays within one cached slice of one L2 table.
    const uint64_t coverage = l2_slice_coverage();
    const uint64_t cover_end = std::min(offset + max_bytes, (offset / coverage + 1) * coverage);
    const uint64_t l1i = geom_.l1_index(offset);
    if (l1i >= l1_.size() || (l1_[l1i] & qcow2::kL1OffsetMask) == 0) {
        m.type = SubclusterType::kUnallocatedPlain;
        m.bytes = cover_end - offset;
        return m;
    }
    const qcow2::L1Entry l1e = qcow2::decode_l1_entry(l1_[l1i]);
    if (Status st = qcow2::validate_l1_entry(l1e, geom_, l1i); !st.ok())
        return signal_corruption("L2 table offset " + hex_string(l1e.l2_offset) +
                                 " unaligned (L1 index: " + hex_string(l1i) + ")");
    ASSIGN_OR_RETURN(MetaCache::Entry * table, load_l2(l1e.l2_offset, offset));
    const qcow2::L2Context l2ctx{image_.header.version, false};
    const uint64_t sub_size = geom_.subcluster_size();
    uint64_t pos = offset;
    bool first = true;
    uint64_t expect_host = 0;
    while (pos < cover_end) {
        const uint64_t l2i = geom_.l2_index(pos);
        ASSIGN_OR_RETURN(qcow2::RawL2Entry raw,
                         qcow2::read_l2_entry(table->data, l2_slice_index(pos), geom_.extended_l2));
        const qcow2::L2Entry e = qcow2::decode_l2_entry(raw.word, raw.bitmap, geom_);
        if (Status st = qcow2::validate_l2_entry(e, geom_, l2ctx, l2i); !st.ok()) {
            if (first) return signal_corruption(st.error().message);
            break;
        }
        const uint64_t cluster_end = (pos | (geom_.cluster_size() - 1)) + 1;
        // Walk the subclusters of this entry.
        while (pos < cover_end && pos < cluster_end) {
            const uint32_t sc = geom_.subcluster_index(pos);
            const SubclusterType t = qcow2::subcluster_type(e, geom_, sc);
            if (t == SubclusterType::kInvalid) {
                if (first)
                    return signal_corruption(
                        "Invalid cluster entry found  (L2 offset: " + hex_string(l1e.l2_offset) +
                        ", L2 index: " + hex_string(l2i) + ")");
                return m;
            }
            // Written in place: normal (sub)clusters whose entry has COPIED.
            const bool in_place = e.copied && t == SubclusterType::kNormal;
            uint64_t host = 0;
            if (t == SubclusterType::kNormal || t == SubclusterType::kZeroAlloc ||
                t == SubclusterType::kUnallocatedAlloc)
                host = e.host_offset + geom_.offset_in_cluster(pos);
            if (first) {
                m.type = t;
                m.host_offset = host;
                m.entry = e;
                m.in_place = in_place;
                first = false;
            } else {
                if (t != m.type || in_place != m.in_place) return m;
                if (t == SubclusterType::kCompressed) return m;
                if (t == SubclusterType::kNormal && host != expect_host) return m;
            }
            const uint64_t sub_end = std::min({(pos / sub_size + 1) * sub_size, cover_end});
            m.bytes += sub_end - pos;
            expect_host = host + (sub_end - pos);
            pos = sub_end;
        }
    }
    return m;
}

Status Qcow2Node::read_compressed(const qcow2::L2Entry& entry, std::vector<std::byte>& cluster) {
    const qcow2::Extent ext = qcow2::compressed_read_extent(entry);
    const uint64_t file_size = file_->node()->size();
    if (ext.offset >= file_size)
        return corrupt_error("qcow2: compressed cluster at host offset " + hex_string(ext.offset) +
                                 " starts beyond the end of the file (" +
                                 std::to_string(file_size) + " bytes)",
                             ext.offset);
    std::vector<std::byte> buf(ext.length);
    ::coblock::co_debug_event(file_, BlkdebugEvent::kReadCompressed);
    TRY(read_file_padded(ext.offset, buf.data(), buf.size()));
    cluster.resize(geom_.cluster_size());
    return decompress_cluster(image_.header.compression_type, buf.data(), buf.size(),
                              cluster.data(), cluster.size());
}

Status Qcow2Node::read_guest(uint64_t offset, uint64_t bytes, IoVector& qiov) {
    uint64_t pos = 0;
    while (pos < bytes) {
        Mapping m;
        uint64_t epoch = 0;
        {
            CoMutexGuard guard(lock_);
            ASSIGN_OR_RETURN(m, get_mapping(offset + pos, bytes - pos));
            epoch = read_epoch_;
            reads_by_epoch_[epoch]++;
        }
        // Until this read is done its host clusters must not be reused
        // (see wait_for_old_reads).
        struct ReadDone {
            Qcow2Node* node;
            uint64_t epoch;
            ~ReadDone() {
                auto it = node->reads_by_epoch_.find(epoch);
                if (it != node->reads_by_epoch_.end() && --it->second == 0)
                    node->reads_by_epoch_.erase(it);
                node->read_waiters_.wake_all();
            }
        } done{this, epoch};
        const uint64_t n = std::min(m.bytes, bytes - pos);
        const uint64_t guest = offset + pos;
        IoVector sub = qiov.slice(pos, n);
        switch (m.type) {
            case SubclusterType::kUnallocatedPlain:
            case SubclusterType::kUnallocatedAlloc: {
                const uint64_t bsize = backing_ ? backing_->node()->size() : 0;
                uint64_t from_backing = guest < bsize ? std::min(n, bsize - guest) : 0;
                if (from_backing) {
                    ::coblock::co_debug_event(file_, BlkdebugEvent::kReadBackingAio);
                    IoVector part = sub.slice(0, from_backing);
                    TRY(co_child_preadv(backing_, guest, from_backing, part));
                }
                if (from_backing < n) sub.fill(from_backing, 0, n - from_backing);
                break;
            }
            case SubclusterType::kZeroPlain:
            case SubclusterType::kZeroAlloc:
                sub.fill(0);
                break;
            case SubclusterType::kNormal:
                ::coblock::co_debug_event(file_, BlkdebugEvent::kReadAio);
                TRY(co_child_preadv(file_, m.host_offset, n, sub));
                break;
            case SubclusterType::kCompressed: {
                std::vector<std::byte> cluster;
                TRY(read_compressed(m.entry, cluster));
                sub.copy_from(0, cluster.data() + geom_.offset_in_cluster(guest), n);
                break;
            }
            case SubclusterType::kInvalid:
                return make_error(ErrorKind::kInternal, "qcow2: invalid mapping");
        }
        pos += n;
    }
    return {};
}

void Qcow2Node::wait_for_old_reads() {
    while (!reads_by_epoch_.empty() && reads_by_epoch_.begin()->first < last_free_epoch_)
        read_waiters_.co_wait(&lock_);
}

Status Qcow2Node::co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) {
    TRY(check_usable());
    return read_guest(offset, bytes, qiov);
}

Status Qcow2Node::write_l1_entry(uint64_t index) {
    const uint64_t off = image_.header.l1_table_offset + index * 8;
    TRY(check_overlap(kOverlapActiveL1, off, 8));
    ::coblock::co_debug_event(file_, BlkdebugEvent::kL1Update);
    std::byte word[8];
    store_be<uint64_t>(word, l1_[index]);
    TRY(co_child_pwrite(file_, off, word, 8));
    return co_child_flush(file_);
}

Status Qcow2Node::grow_l1(uint64_t min_size) {
    uint64_t new_size = std::max<uint64_t>(l1_.size(), 1);
    while (new_size < min_size)
        new_size = (new_size * 3 + 1) / 2;
    new_size = std::max(new_size, min_size);
    if (new_size > qcow2::kMaxL1Entries) new_size = min_size;
    if (new_size > qcow2::kMaxL1Entries)
        return invalid_argument("qcow2: L1 table would exceed " +
                                std::to_string(qcow2::kMaxL1Entries) + " entries");
    const uint64_t cs = geom_.cluster_size();
    const uint64_t clusters = div_round_up(new_size * 8, cs);
    ::coblock::co_debug_event(file_, BlkdebugEvent::kL1GrowAllocTable);
    ASSIGN_OR_RETURN(uint64_t table, alloc_clusters(clusters));
    TRY(flush_refcount_cache());
    std::vector<uint64_t> entries = l1_;
    entries.resize(new_size, 0);
    std::vector<std::byte> bytes = qcow2::encode_be64_table(entries);
    bytes.resize(clusters * cs);
    ::coblock::co_debug_event(file_, BlkdebugEvent::kL1GrowWriteTable);
    TRY(check_overlap(0, table, bytes.size()));
    TRY(co_child_pwrite(file_, table, bytes.data(), bytes.size()));
    TRY(co_child_flush(file_));
    std::byte fields[12];
    store_be<uint32_t>(fields, static_cast<uint32_t>(new_size));
    store_be<uint64_t>(fields + 4, table);
    ::coblock::co_debug_event(file_, BlkdebugEvent::kL1GrowActivateTable);
    TRY(write_header_field(36, fields, 12));
    const uint64_t old_offset = image_.header.l1_table_offset;
    const uint64_t old_bytes = l1_.size() * 8;
    image_.header.l1_table_offset = table;
    image_.header.l1_size = static_cast<uint32_t>(new_size);
    l1_ = std::move(entries);
    if (old_bytes)
        TRY(update_refcount(old_offset, align_up(old_bytes, cs), -1, pass_discard_other_));
    return {};
}

Result<MetaCache::Entry*> Qcow2Node::get_l2_for_write(uint64_t guest_offset, uint64_t* l2_offset) {
    const uint64_t l1i = geom_.l1_index(guest_offset);
    if (l1i >= l1_.size()) TRY(grow_l1(l1i + 1));
    const uint64_t e = l1_[l1i];
    const uint64_t old = e & qcow2::kL1OffsetMask;
    if (old) {
        const qcow2::L1Entry l1e = qcow2::decode_l1_entry(e);
        if (!qcow2::validate_l1_entry(l1e, geom_, l1i).ok())
            return signal_corruption("L2 table offset " + hex_string(old) +
                                     " unaligned (L1 index: " + hex_string(l1i) + ")");
        if (e & qcow2::kCopiedFlag) {
            // The table will be written back: refuse a table that lies on
            // other metadata now, before this request writes guest data
            // anywhere (the write-back check would come too late for that).
            TRY(check_overlap(kOverlapActiveL2, old, geom_.cluster_size()));
            *l2_offset = old;
            return load_l2(old, guest_offset);
        }
    }
    // A new table (zeros), or a private copy of a table shared with a snapshot.
    const uint64_t cs = geom_.cluster_size();
    std::vector<std::byte> data(cs);
    if (old) {
        ::coblock::co_debug_event(file_, BlkdebugEvent::kL2AllocCowRead);
        TRY(read_l2_table(old, data));
    }
    ASSIGN_OR_RETURN(uint64_t table, alloc_clusters(1));
    TRY(flush_refcount_cache());
    ::coblock::co_debug_event(file_, BlkdebugEvent::kL2AllocWrite);
    ::coblock::co_debug_event(file_, BlkdebugEvent::kL2Update);
    TRY(check_overlap(0, table, cs));
    TRY(co_child_pwrite(file_, table, data.data(), data.size()));
    TRY(co_child_flush(file_));
    l2_clusters_.insert(table >> geom_.cluster_bits);
    drop_l2_table(table);
    l1_[l1i] = table | qcow2::kCopiedFlag;
    TRY(write_l1_entry(l1i));
    if (old) {
        l2_clusters_.erase(old >> geom_.cluster_bits);
        TRY(update_refcount(old, cs, -1, pass_discard_other_));
        // The table may live on (shared): keep it out of the active set only.
    }
    *l2_offset = table;
    return load_l2(table, guest_offset);
}

// Extended L2 (qcow2-notes.md §12): a write into an unallocated cluster, or
// into unallocated/zero subclusters of a cluster this image owns (COPIED),
// only copies up to the subcluster boundaries around the write and sets the
// allocation bits of the subclusters covered; the others keep reading from
// the backing file or as zeros. Shared and compressed clusters take the
// whole-cluster path (`*handled` false).
Status Qcow2Node::write_subclusters(uint64_t offset, uint64_t max, IoVector& qiov, uint64_t qoff,
                                    uint64_t* done, bool* handled) {
    *handled = false;
    const uint64_t cs = geom_.cluster_size();
    const uint64_t sub = geom_.subcluster_size();
    const uint64_t cluster_start = align_down(offset, cs);
    const uint64_t w_end = std::min(offset + max, cluster_start + cs);
    const uint64_t cow_start = align_down(offset, sub);
    const uint64_t cow_end = std::min(align_up(w_end, sub), cluster_start + cs);
    uint64_t l2_offset = 0, host = 0;
    bool fresh = false;
    {
        CoMutexGuard guard(lock_);
        wait_for_old_reads();
        ASSIGN_OR_RETURN(MetaCache::Entry * table, get_l2_for_write(offset, &l2_offset));
        ASSIGN_OR_RETURN(qcow2::RawL2Entry raw,
                         qcow2::read_l2_entry(table->data, l2_slice_index(offset), true));
        const qcow2::L2Entry e = qcow2::decode_l2_entry(raw.word, raw.bitmap, geom_);
        if (e.compressed || (e.host_offset != 0 && !e.copied)) return {};
        *handled = true;
        if (e.host_offset) {
            host = e.host_offset;
        } else {
            ASSIGN_OR_RETURN(host, alloc_clusters(1));
            fresh = true;
        }
    }
    const uint64_t head_len = offset - cow_start;
    const uint64_t tail_len = cow_end - w_end;
    std::vector<std::byte> head(head_len), tail(tail_len);
    Status st;
    if (head_len) {
        ::coblock::co_debug_event(file_, BlkdebugEvent::kCowRead);
        IoVector h(head.data(), head_len);
        st = read_guest(cow_start, head_len, h);
    }
    if (st.ok() && tail_len) {
        ::coblock::co_debug_event(file_, BlkdebugEvent::kCowRead);
        const uint64_t readable = w_end < size() ? std::min(tail_len, size() - w_end) : 0;
        if (readable) {
            IoVector t(tail.data(), readable);
            st = read_guest(w_end, readable, t);
        }
    }
    const uint64_t target = host + (cow_start - cluster_start);
    if (st.ok()) st = check_overlap(0, target, cow_end - cow_start);
    if (st.ok()) {
        IoVector iov;
        if (head_len) iov.append(head.data(), head_len);
        iov.append(qiov.slice(qoff, w_end - offset));
        if (tail_len) iov.append(tail.data(), tail_len);
        ::coblock::co_debug_event(
            file_, (head_len || tail_len) ? BlkdebugEvent::kCowWrite : BlkdebugEvent::kWriteAio);
        st = co_child_pwritev(file_, target, cow_end - cow_start, iov);
    }
    CoMutexGuard guard(lock_);
    if (!st.ok()) {
        if (fresh) (void)update_refcount(host, cs, -1, false);
        return st;
    }
    TRY(mark_dirty());
    ASSIGN_OR_RETURN(MetaCache::Entry * table, load_l2(l2_offset, offset));
    ASSIGN_OR_RETURN(qcow2::RawL2Entry raw,
                     qcow2::read_l2_entry(table->data, l2_slice_index(offset), true));
    const uint32_t first = static_cast<uint32_t>((cow_start - cluster_start) / sub);
    const uint32_t last = static_cast<uint32_t>((cow_end - cluster_start) / sub);
    uint64_t mask = 0;
    for (uint32_t i = first; i < last; ++i)
        mask |= uint64_t{1} << i;
    raw.word = host | qcow2::kCopiedFlag;
    raw.bitmap = (raw.bitmap | mask) & ~(mask << 32);
    TRY(qcow2::write_l2_entry(table->data, l2_slice_index(offset), true, raw));
    table->dirty = true;
    l2_depends_on_flush_ = true;
    *done = w_end - offset;
    return {};
}

bool Qcow2Node::reads_as_zeros(const qcow2::L2Entry& e) const {
    if (e.compressed || e.host_offset != 0) return false;
    return e.zero || !backing_;
}

std::byte* Qcow2Node::zero_cluster() {
    // Never written: only the source of zero copy-on-write regions.
    if (zero_cluster_.size() < geom_.cluster_size()) zero_cluster_.assign(geom_.cluster_size(), {});
    return zero_cluster_.data();
}

Status Qcow2Node::write_allocating(uint64_t offset, uint64_t max, IoVector& qiov, uint64_t qoff,
                                   uint64_t* done) {
    *done = 0;
    const uint64_t cs = geom_.cluster_size();
    const uint64_t cluster_start = align_down(offset, cs);
    const uint64_t coverage = l2_slice_coverage();
    const uint64_t cover_end = std::min(offset + max, (offset / coverage + 1) * coverage);
    // At most 32 MiB of new clusters per round.
    // (and at most half a refcount block range, see alloc_clusters).
    const uint64_t max_clusters = std::max<uint64_t>(
        1, std::min<uint64_t>((32u << 20) / cs, geom_.refcount_block_entries() / 2));
    uint64_t l2_offset = 0, host = 0, n = 0;
    std::vector<qcow2::L2Entry> old_entries;
    if (geom_.extended_l2) {
        bool handled = false;
        TRY(write_subclusters(offset, max, qiov, qoff, done, &handled));
        if (handled) return {};
    }
    {
        CoMutexGuard guard(lock_);
        wait_for_old_reads();
        ASSIGN_OR_RETURN(MetaCache::Entry * table, get_l2_for_write(offset, &l2_offset));
        const uint64_t want = div_round_up(cover_end - cluster_start, cs);
        for (uint64_t k = 0; k < want && k < max_clusters; ++k) {
            const uint64_t l2i = l2_slice_index(cluster_start + k * cs);
            ASSIGN_OR_RETURN(qcow2::RawL2Entry raw,
                             qcow2::read_l2_entry(table->data, l2i, geom_.extended_l2));
            const qcow2::L2Entry e = qcow2::decode_l2_entry(raw.word, raw.bitmap, geom_);
            if (entry_in_place(e, geom_)) break;
            old_entries.push_back(e);
        }
        n = old_entries.size();
        if (n == 0) return {};  // became writable in place meanwhile: caller retries
        ASSIGN_OR_RETURN(host, alloc_clusters(n));
    }
    const uint64_t alloc_end = cluster_start + n * cs;
    const uint64_t write_end = std::min(offset + max, alloc_end);
    const uint64_t head_len = offset - cluster_start;
    const uint64_t tail_len = alloc_end - write_end;
    // A copy-on-write region of a cluster that reads as zeros (unallocated
    // without a backing file, or a zero cluster) comes from one shared zero
    // buffer: no allocation, fill or lookup per request (the common case of
    // a first write into an empty image).
    const bool head_zero = head_len && reads_as_zeros(old_entries.front());
    const bool tail_zero = tail_len && reads_as_zeros(old_entries.back());
    std::vector<std::byte> head(head_zero ? 0 : head_len), tail(tail_zero ? 0 : tail_len);
    Status st;
    if (head_len) {
        ::coblock::co_debug_event(file_, BlkdebugEvent::kCowRead);
        if (!head_zero) {
            IoVector h(head.data(), head_len);
            st = read_guest(cluster_start, head_len, h);
        }
    }
    if (st.ok() && tail_len) {
        ::coblock::co_debug_event(file_, BlkdebugEvent::kCowRead);
        // Bytes past the end of the disk are not guest data: zeros.
        const uint64_t readable = write_end < size() ? std::min(tail_len, size() - write_end) : 0;
        if (readable && !tail_zero) {
            IoVector t(tail.data(), readable);
            st = read_guest(write_end, readable, t);
        }
    }
    if (st.ok()) st = check_overlap(0, host, n * cs);
    // QEMU's handle_alloc_space: when every copy-on-write region reads as
    // zeros, zero the fresh clusters in the file (fallocate, no data moved)
    // and write only the guest's bytes, instead of writing zero buffers
    // around them. Only where the file zeroes without writing buffers
    // (kReqNoFallback); if it declines, the buffers are written as before.
    // The L2 entry is still updated only after both writes completed.
    bool skip_cow = false;
    if (st.ok() && (head_len || tail_len) && (!head_len || head_zero) && (!tail_len || tail_zero) &&
        (file_->node()->supported_zero_flags() & kReqNoFallback)) {
        ::coblock::co_debug_event(file_, BlkdebugEvent::kClusterAllocSpace);
        Status zeroed = co_child_pwrite_zeroes(file_, host, n * cs, kReqNoFallback);
        if (zeroed.ok())
            skip_cow = true;
        else if (zeroed.error().kind != ErrorKind::kUnsupported)
            st = zeroed;
    }
    if (st.ok() && skip_cow) {
        IoVector iov = qiov.slice(qoff, write_end - offset);
        ::coblock::co_debug_event(file_, BlkdebugEvent::kWriteAio);
        st = co_child_pwritev(file_, host + head_len, write_end - offset, iov);
    } else if (st.ok()) {
        IoVector iov;
        if (head_len) iov.append(head_zero ? zero_cluster() : head.data(), head_len);
        iov.append(qiov.slice(qoff, write_end - offset));
        if (tail_len) iov.append(tail_zero ? zero_cluster() : tail.data(), tail_len);
        ::coblock::co_debug_event(
            file_, (head_len || tail_len) ? BlkdebugEvent::kCowWrite : BlkdebugEvent::kWriteAio);
        st = co_child_pwritev(file_, host, n * cs, iov);
    }
    CoMutexGuard guard(lock_);
    if (!st.ok()) {
        (void)update_refcount(host, n * cs, -1, false);
        return st;
    }
    TRY(mark_dirty());
    ASSIGN_OR_RETURN(MetaCache::Entry * table, load_l2(l2_offset, cluster_start));
    for (uint64_t k = 0; k < n; ++k) {
        const uint64_t l2i = l2_slice_index(cluster_start + k * cs);
        qcow2::RawL2Entry raw{(host + k * cs) | qcow2::kCopiedFlag,
                              geom_.extended_l2 ? kAllAllocBits : 0};
        TRY(qcow2::write_l2_entry(table->data, l2i, geom_.extended_l2, raw));
    }
    table->dirty = true;
    l2_depends_on_flush_ = true;
    for (const qcow2::L2Entry& e : old_entries)
        TRY(free_l2_entry_clusters(e, pass_discard_other_));
    *done = write_end - offset;
    return {};
}

Status Qcow2Node::co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) {
    TRY(check_usable());
    if (flags & kReqWriteCompressed) return write_compressed(offset, bytes, qiov);
    uint64_t pos = 0;
    while (pos < bytes) {
        Mapping m;
        {
            CoMutexGuard guard(lock_);
            ASSIGN_OR_RETURN(m, get_mapping(offset + pos, bytes - pos));
        }
        if (m.in_place) {
            const uint64_t n = std::min(m.bytes, bytes - pos);
            TRY(check_overlap(0, m.host_offset, n));
            ::coblock::co_debug_event(file_, BlkdebugEvent::kWriteAio);
            IoVector sub = qiov.slice(pos, n);
            TRY(co_child_pwritev(file_, m.host_offset, n, sub));
            pos += n;
            continue;
        }
        // The clusters write_allocating may touch: up to the end of the
        // request within this L2 table.
        const uint64_t cs = geom_.cluster_size();
        const uint64_t start = align_down(offset + pos, cs);
        const uint64_t coverage = l2_slice_coverage();
        const uint64_t end =
            align_up(std::min(offset + bytes, ((offset + pos) / coverage + 1) * coverage), cs);
        AllocRangeGuard alloc(alloc_ranges_, start, end);
        uint64_t done = 0;
        TRY(write_allocating(offset + pos, bytes - pos, qiov, pos, &done));
        pos += done;
    }
    return {};
}

Status Qcow2Node::zero_or_discard_cluster(uint64_t guest, bool discard, bool unmap,
                                          bool full_discard) {
    const bool v3 = image_.header.version >= qcow2::kVersion3;
    const uint64_t l1i = geom_.l1_index(guest);
    const bool have_table = l1i < l1_.size() && (l1_[l1i] & qcow2::kL1OffsetMask) != 0;
    if (!have_table && (!backing_ || full_discard)) return {};  // already reads zeros
    uint64_t l2_offset = 0;
    MetaCache::Entry* table = nullptr;
    qcow2::L2Entry old;
    if (have_table) {
        ASSIGN_OR_RETURN(Mapping m, get_mapping(guest, geom_.cluster_size()));
        (void)m;  // validates the entry
        ASSIGN_OR_RETURN(table, load_l2(l1_[l1i] & qcow2::kL1OffsetMask, guest));
        ASSIGN_OR_RETURN(
            qcow2::RawL2Entry raw,
            qcow2::read_l2_entry(table->data, l2_slice_index(guest), geom_.extended_l2));
        old = qcow2::decode_l2_entry(raw.word, raw.bitmap, geom_);
    }
    const bool allocated = old.host_offset != 0 || old.compressed;
    qcow2::RawL2Entry now{0, 0};
    bool keep_host = false;
    if (full_discard) {
        now = {0, 0};
    } else if (discard) {
        if (!backing_ && !allocated) return {};
        if (v3)
            now = geom_.extended_l2 ? qcow2::RawL2Entry{0, kAllZeroBits}
                                    : qcow2::RawL2Entry{qcow2::kZeroFlag, 0};
    } else {
        const bool keep = !unmap && !old.compressed && old.copied && old.host_offset != 0;
        if (keep) {
            keep_host = true;
            now =
                geom_.extended_l2
                    ? qcow2::RawL2Entry{old.host_offset | qcow2::kCopiedFlag, kAllZeroBits}
                    : qcow2::RawL2Entry{old.host_offset | qcow2::kCopiedFlag | qcow2::kZeroFlag, 0};
        } else {
            now = geom_.extended_l2 ? qcow2::RawL2Entry{0, kAllZeroBits}
                                    : qcow2::RawL2Entry{qcow2::kZeroFlag, 0};
        }
    }
    if (have_table) {
        ASSIGN_OR_RETURN(
            qcow2::RawL2Entry cur,
            qcow2::read_l2_entry(table->data, l2_slice_index(guest), geom_.extended_l2));
        if (cur == now) return {};
    }
    ASSIGN_OR_RETURN(table, get_l2_for_write(guest, &l2_offset));
    TRY(qcow2::write_l2_entry(table->data, l2_slice_index(guest), geom_.extended_l2, now));
    table->dirty = true;
    if (allocated && !keep_host)
        TRY(free_l2_entry_clusters(
            old, (discard || unmap) ? pass_discard_request_ : pass_discard_other_));
    return {};
}

Status Qcow2Node::co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
    TRY(check_usable());
    if (image_.header.version < qcow2::kVersion3)
        return unsupported_error("qcow2 v2: no zero clusters");
    const uint64_t cs = geom_.cluster_size();
    const uint64_t end = offset + bytes;
    if (!geom_.is_cluster_aligned(offset) || (!geom_.is_cluster_aligned(end) && end != size()))
        return unsupported_error("qcow2: zero write not cluster aligned");
    AllocRangeGuard alloc(alloc_ranges_, 0, kWholeDisk);
    CoMutexGuard guard(lock_);
    wait_for_old_reads();
    for (uint64_t c = offset; c < end; c += cs)
        TRY(zero_or_discard_cluster(c, false, (flags & kReqMayUnmap) != 0, false));
    return {};
}

Status Qcow2Node::co_pdiscard(uint64_t offset, uint64_t bytes) {
    TRY(check_usable());
    // v2 with a backing file cannot express "reads as zero": nothing done.
    if (image_.header.version < qcow2::kVersion3 && backing_) return {};
    const uint64_t cs = geom_.cluster_size();
    uint64_t start = align_up(offset, cs);
    uint64_t end = offset + bytes;
    if (end != size()) end = align_down(end, cs);
    if (start >= end) return {};
    AllocRangeGuard alloc(alloc_ranges_, 0, kWholeDisk);
    CoMutexGuard guard(lock_);
    wait_for_old_reads();
    for (uint64_t c = start; c < end; c += cs)
        TRY(zero_or_discard_cluster(c, true, true, false));
    return {};
}

Status Qcow2Node::co_preallocate(Prealloc mode) {
    AllocRangeGuard alloc(alloc_ranges_, 0, kWholeDisk);
    CoMutexGuard guard(lock_);
    wait_for_old_reads();
    const uint64_t cs = geom_.cluster_size();
    const uint64_t coverage = l2_slice_coverage();
    uint64_t file_end = file_->node()->size();
    for (uint64_t off = 0; off < size();) {
        uint64_t end = std::min(size(), (off / coverage + 1) * coverage);
        const uint64_t run = std::max<uint64_t>(1, geom_.refcount_block_entries() / 2);
        end = std::min(end, off + run * cs);
        const uint64_t n = div_round_up(end - off, cs);
        uint64_t l2_offset = 0;
        ASSIGN_OR_RETURN(MetaCache::Entry * table, get_l2_for_write(off, &l2_offset));
        (void)table;
        ASSIGN_OR_RETURN(uint64_t host, alloc_clusters(n));
        ASSIGN_OR_RETURN(table, load_l2(l2_offset, off));
        for (uint64_t k = 0; k < n; ++k) {
            // Extended L2: allocation bits stay clear, so the subclusters
            // still read from the backing file (qcow2-notes.md §12).
            const qcow2::RawL2Entry raw{(host + k * cs) | qcow2::kCopiedFlag, 0};
            TRY(qcow2::write_l2_entry(table->data, l2_slice_index(off + k * cs), geom_.extended_l2,
                                      raw));
        }
        table->dirty = true;
        file_end = std::max(file_end, host + n * cs);
        off = end;
    }
    TRY(flush_caches(true));
    TRY(co_child_flush(file_));
    // The data clusters lie beyond the metadata: extend the file over them.
    if (file_end > file_->node()->size())
        TRY(co_child_truncate(file_, file_end, false,
                              mode == Prealloc::kMetadata ? Prealloc::kOff : mode, false));
    return co_child_flush(file_);
}

Result<BlockStatus> Qcow2Node::co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) {
    Mapping m;
    {
        CoMutexGuard guard(lock_);
        ASSIGN_OR_RETURN(m, get_mapping(offset, bytes));
        if (metadata_preallocation_ < 0) {
            // QEMU's qcow2_detect_metadata_preallocation: far more clusters
            // in use than the file really stores.
            const int64_t real = file_->node()->allocated_size();
            int detected = 0;
            if (real >= 0) {
                const uint64_t cs = geom_.cluster_size();
                const int64_t real_clusters = real / static_cast<int64_t>(cs);
                const int64_t threshold = std::max(real_clusters * 10 / 9, real_clusters + 2);
                const uint64_t end_cluster = div_round_up(file_->node()->size(), cs);
                int64_t count = 0;
                for (uint64_t i = 0; i < end_cluster && count <= threshold; ++i) {
                    ASSIGN_OR_RETURN(uint64_t rc, get_refcount(i));
                    count += rc != 0;
                }
                detected = count > threshold;
            }
            metadata_preallocation_ = detected;
        }
    }
    BlockStatus st;
    st.bytes = std::min(m.bytes, bytes);
    switch (m.type) {
        case SubclusterType::kNormal:
            st.flags = kStatusData | kStatusOffsetValid;
            st.offset = m.host_offset;
            st.file = file_->node();
            // QEMU's BDRV_BLOCK_RECURSE (set only for images that look
            // metadata-preallocated): holes in the file read as zeros, and
            // the run ends where the file's answer does.
            if (metadata_preallocation_ == 1 && want_zero) {
                auto below = co_node_block_status(file_->node(), st.offset, st.bytes, true);
                if (below.ok()) {
                    if ((below->flags & kStatusEof) &&
                        (below->bytes == 0 || (below->flags & kStatusZero))) {
                        st.flags |= kStatusZero;
                    } else if (below->bytes > 0) {
                        st.bytes = std::min(st.bytes, below->bytes);
                        st.flags |= below->flags & kStatusZero;
                    }
                }
            }
            break;
        case SubclusterType::kZeroAlloc:
            st.flags = kStatusZero | kStatusOffsetValid;
            st.offset = m.host_offset;
            st.file = file_->node();
            break;
        case SubclusterType::kUnallocatedAlloc:
            st.flags = kStatusOffsetValid;
            st.offset = m.host_offset;
            st.file = file_->node();
            break;
        case SubclusterType::kZeroPlain:
            st.flags = kStatusZero;
            break;
        case SubclusterType::kCompressed:
            st.flags = kStatusData | kStatusCompressed;
            break;
        default:
            st.flags = 0;
    }
    return st;
}

Status Qcow2Node::co_flush() {
    if (read_only() || unusable_) return {};
    CoMutexGuard guard(lock_);
    TRY(flush_caches(!lazy_refcounts_));
    if (!pending_discards_.empty()) {
        TRY(co_child_flush(file_));
        auto discards = std::move(pending_discards_);
        pending_discards_.clear();
        for (auto [off, len] : discards) {
            // Only clusters still free (none was reused meanwhile).
            ASSIGN_OR_RETURN(uint64_t rc, get_refcount(off >> geom_.cluster_bits));
            if (rc == 0) (void)co_child_pdiscard(file_, off, len);
        }
    }
    return {};
}

Status Qcow2Node::co_truncate(uint64_t new_size, bool, Prealloc prealloc, bool shrink_ok) {
    TRY(check_usable());
    if (prealloc != Prealloc::kOff)
        return unsupported_error(std::string("qcow2: unsupported preallocation mode '") +
                                 prealloc_name(prealloc) + "'");
    if (new_size % qcow2::kSectorSize)
        return invalid_argument("The new size must be a multiple of 512");
    if (!snapshots_.empty()) return unsupported_error("Can't resize an image which has snapshots");
    const uint64_t cs = geom_.cluster_size();
    const uint64_t old_size = size();
    if (new_size < old_size && !shrink_ok)
        return invalid_argument("qcow2: shrinking needs --shrink (would lose data)");
    // Growing over a longer backing file (QEMU's BDRV_REQ_ZERO_WRITE from
    // bdrv_co_truncate): the new area must read as zeros, not as the
    // backing file's data that was hidden beyond the old end.
    const uint64_t backing_len = backing_ ? backing_->node()->size() : 0;
    const uint64_t zero_end = std::min(new_size, backing_len);
    const bool zero_new_area = new_size > old_size && backing_len > old_size;
    if (zero_new_area && image_.header.version < qcow2::kVersion3)
        return Error{ErrorKind::kUnsupported, ENOTSUP,
                     "Failed to zero out new clusters: Operation not supported", std::nullopt};
    {
        AllocRangeGuard alloc(alloc_ranges_, 0, kWholeDisk);
        CoMutexGuard guard(lock_);
        wait_for_old_reads();
        if (new_size < old_size) {
            TRY(shrink_locked(new_size));
        } else if (new_size > old_size) {
            const uint64_t need = qcow2::l1_entries_for_size(geom_, new_size);
            if (need > qcow2::kMaxL1Entries) return invalid_argument("qcow2: image size too large");
            if (need > l1_.size()) TRY(grow_l1(need));
            // Whole clusters: zero flags.
            if (zero_new_area)
                for (uint64_t c = align_up(old_size, cs); c < zero_end; c += cs)
                    TRY(zero_or_discard_cluster(c, false, false, false));
        }
    }
    // The cluster holding the old end: explicit zeros up to its end (the
    // rest of the cluster lies past the old end, so its copy-on-write tail
    // is zeros, and extended L2 leaves no subcluster reading the backing).
    if (zero_new_area && !geom_.is_cluster_aligned(old_size)) {
        const uint64_t head_end = std::min(align_up(old_size, cs), new_size);
        std::vector<std::byte> zeros(head_end - old_size);
        IoVector qiov(zeros.data(), zeros.size());
        TRY(co_pwritev(old_size, zeros.size(), qiov, 0));
    }
    AllocRangeGuard alloc(alloc_ranges_, 0, kWholeDisk);
    CoMutexGuard guard(lock_);
    std::byte word[8];
    store_be<uint64_t>(word, new_size);
    TRY(write_header_field(24, word, 8));
    image_.header.size = new_size;
    set_size(new_size);
    return {};
}

// QEMU's shrink (qcow2_co_truncate, qcow2_shrink_l1_table): discard the
// clusters past the new end, clear the L1 entries past it on disk (durable
// before their L2 tables are freed), free those tables, then cut the file
// after the last cluster still in use. l1_size in the header stays.
Status Qcow2Node::shrink_locked(uint64_t new_size) {
    const uint64_t cs = geom_.cluster_size();
    for (uint64_t c = align_up(new_size, cs); c < size(); c += cs)
        TRY(zero_or_discard_cluster(c, true, true, true));
    const uint64_t keep = qcow2::l1_entries_for_size(geom_, new_size);
    if (keep < l1_.size()) {
        TRY(flush_caches(true));
        ::coblock::co_debug_event(file_, BlkdebugEvent::kL1ShrinkWriteTable);
        const uint64_t off = image_.header.l1_table_offset + keep * 8;
        const uint64_t len = (l1_.size() - keep) * 8;
        TRY(check_overlap(kOverlapActiveL1, off, len));
        std::vector<std::byte> zeros(len);
        TRY(co_child_pwrite(file_, off, zeros.data(), zeros.size()));
        TRY(co_child_flush(file_));
        ::coblock::co_debug_event(file_, BlkdebugEvent::kL1ShrinkFreeL2Clusters);
        for (uint64_t i = l1_.size(); i-- > keep;) {
            const uint64_t l2 = l1_[i] & qcow2::kL1OffsetMask;
            l1_[i] = 0;
            if (!l2) continue;
            l2_clusters_.erase(l2 >> geom_.cluster_bits);
            TRY(update_refcount(l2, cs, -1, true));
        }
    }
    TRY(flush_caches(true));
    TRY(co_child_flush(file_));
    // Discards of the freed clusters, now that no table points at them.
    for (auto [off, len] : std::exchange(pending_discards_, {})) {
        ASSIGN_OR_RETURN(uint64_t rc, get_refcount(off >> geom_.cluster_bits));
        if (rc == 0) (void)co_child_pdiscard(file_, off, len);
    }
    TRY(shrink_reftable_locked());
    const uint64_t file_size = file_->node()->size();
    uint64_t last = div_round_up(file_size, cs);
    while (last > 0) {
        ASSIGN_OR_RETURN(uint64_t rc, get_refcount(last - 1));
        if (rc) break;
        --last;
    }
    if (last * cs < file_size)
        (void)co_child_truncate(file_, last * cs, false, Prealloc::kOff, true);
    return {};
}

// QEMU's qcow2_shrink_reftable: a refcount block that counts nothing but
// itself is dropped from the refcount table (the table rewritten and made
// durable first), so the file can end before it. Blocks stored outside
// their own range are kept (QEMU would leak their cluster).
Status Qcow2Node::shrink_reftable_locked() {
    const uint64_t cs = geom_.cluster_size();
    const uint64_t entries = geom_.refcount_block_entries();
    std::vector<uint64_t> table = reftable_;
    bool any = false;
    for (uint64_t i = 0; i < reftable_.size(); ++i) {
        const uint64_t off = reftable_[i];
        const uint64_t self = off / cs;
        if (!off || self / entries != i) continue;
        ASSIGN_OR_RETURN(MetaCache::Entry * block, load_refblock(off));
        std::vector<std::byte> copy = block->data;
        TRY(qcow2::set_refcount(copy, self % entries, geom_.refcount_order, 0));
        if (std::all_of(copy.begin(), copy.end(), [](std::byte b) { return b == std::byte{0}; })) {
            table[i] = 0;
            any = true;
        }
    }
    if (!any) return {};
    TRY(flush_caches(true));
    std::vector<std::byte> bytes = qcow2::encode_be64_table(table);
    TRY(check_overlap(kOverlapRefcountTable, image_.header.refcount_table_offset, bytes.size()));
    TRY(co_child_pwrite(file_, image_.header.refcount_table_offset, bytes.data(), bytes.size()));
    TRY(co_child_flush(file_));
    for (uint64_t i = 0; i < reftable_.size(); ++i) {
        if (reftable_[i] == table[i]) continue;
        refcount_cache_.erase(reftable_[i]);
        refblock_clusters_.erase(reftable_[i] / cs);
        free_cluster_index_ = std::min(free_cluster_index_, reftable_[i] / cs);
    }
    reftable_ = std::move(table);
    return {};
}

}  // namespace coblock::qcow2drv
