// The request layer: limits enforcement between a parent and a child node
// (QEMU's block/io.c). Aligned requests with aligned memory go straight to
// the driver, split at max_transfer; anything else is bounced through an
// aligned buffer, and unaligned writes become serialised read-modify-write.
#include "block/io.h"

#include <algorithm>

#include "block/graph.h"
#include "coroutine/coroutine.h"
#include "formats/bytes.h"

namespace coblock {

// An in-flight request, on the requesting coroutine's stack.
struct BlockNode::TrackedRequest {
    uint64_t begin = 0;  // overlap range, widened to the alignment
    uint64_t end = 0;
    uint64_t sequence = 0;
    bool serialising = false;
    TrackedRequest* prev = nullptr;
    TrackedRequest* next = nullptr;
    CoQueue waiters;
};

namespace {

using Tracked = BlockNode::TrackedRequest;

// Bounce and zero buffers are built in pieces of at most this size.
constexpr uint64_t kMaxBounceChunk = 16ull << 20;

uint64_t alignment_of(const BlockNode* node) {
    return std::max<uint64_t>(node->limits().request_alignment, 1);
}

// Tracks a request for its lifetime; waits, on construction, for the older
// overlapping requests it must not overtake: a serialising request (RMW)
// waits for every older overlapping request, and any request waits for older
// overlapping serialising ones. Waiting only on older requests rules out
// deadlock cycles.
class RequestTracker {
  public:
    RequestTracker(BlockNode* node, uint64_t begin, uint64_t end, bool serialising) : node_(node) {
        req_.begin = begin;
        req_.end = end;
        req_.serialising = serialising;
        req_.sequence = node->request_sequence_++;
        req_.prev = node->tracked_tail_;
        if (node->tracked_tail_)
            node->tracked_tail_->next = &req_;
        else
            node->tracked_head_ = &req_;
        node->tracked_tail_ = &req_;
        ++node->in_flight_;
        if (serialising) ++node->serialising_in_flight_;
        if (node->serialising_in_flight_ > 0) wait_for_older();
    }
    ~RequestTracker() {
        if (req_.prev)
            req_.prev->next = req_.next;
        else
            node_->tracked_head_ = req_.next;
        if (req_.next)
            req_.next->prev = req_.prev;
        else
            node_->tracked_tail_ = req_.prev;
        if (req_.serialising) --node_->serialising_in_flight_;
        if (!req_.waiters.empty()) req_.waiters.wake_all();
        if (--node_->in_flight_ == 0 && !node_->drain_waiters_.empty())
            node_->drain_waiters_.wake_all();
    }
    RequestTracker(const RequestTracker&) = delete;
    RequestTracker& operator=(const RequestTracker&) = delete;

  private:
    void wait_for_older() {
        for (;;) {
            Tracked* blocker = nullptr;
            for (Tracked* other = node_->tracked_head_; other && other != &req_;
                 other = other->next) {
                if (other->sequence >= req_.sequence) continue;
                if (!req_.serialising && !other->serialising) continue;
                if (other->end <= req_.begin || req_.end <= other->begin) continue;
                blocker = other;
                break;
            }
            if (!blocker) return;
            blocker->waiters.co_wait();
        }
    }

    BlockNode* node_;
    Tracked req_;
};

Status check_write_allowed(BdrvChild* child) {
    BlockNode* node = child->node();
    if (node->read_only()) return make_error(ErrorKind::kReadOnly, "Block node is read-only");
    if (!(child->perm() & (kPermWrite | kPermWriteUnchanged)))
        return make_error(ErrorKind::kPermission,
                          "Write permission not granted on " + node->node_name());
    return {};
}

Status check_offset(uint64_t offset, uint64_t bytes) {
    uint64_t end;
    if (!checked_add(offset, bytes, &end) || end > (uint64_t{1} << 63))
        return make_error(ErrorKind::kOutOfRange, "request offset " + std::to_string(offset) +
                                                      " length " + std::to_string(bytes) +
                                                      " is out of range");
    return {};
}

// Reads an aligned range with aligned memory: split at max_transfer; the
// part beyond the end of the node reads as zeros.
Status co_read_aligned(BlockNode* node, uint64_t offset, uint64_t bytes, IoVector& qiov,
                       uint32_t flags) {
    const uint64_t size_aligned = align_up(node->size(), alignment_of(node));
    uint64_t readable = offset >= size_aligned ? 0 : std::min(bytes, size_aligned - offset);
    if (readable < bytes) qiov.fill(readable, 0, bytes - readable);
    uint64_t max = node->limits().max_transfer;
    if (max) max = std::max(align_down(max, alignment_of(node)), alignment_of(node));
    uint64_t done = 0;
    while (done < readable) {
        uint64_t n = max ? std::min(readable - done, max) : readable - done;
        if (done == 0 && n == bytes) {
            TRY(node->co_preadv(offset, n, qiov, flags));
        } else {
            IoVector part = qiov.slice(done, n);
            TRY(node->co_preadv(offset + done, n, part, flags));
        }
        done += n;
    }
    return {};
}

Status co_write_fragments(BlockNode* node, uint64_t offset, uint64_t bytes, IoVector& qiov,
                          uint32_t flags) {
    uint64_t max = node->limits().max_transfer;
    if (max) max = std::max(align_down(max, alignment_of(node)), alignment_of(node));
    uint64_t done = 0;
    while (done < bytes) {
        uint64_t n = max ? std::min(bytes - done, max) : bytes - done;
        if (done == 0 && n == bytes) {
            TRY(node->co_pwritev(offset, n, qiov, flags));
        } else {
            IoVector part = qiov.slice(done, n);
            TRY(node->co_pwritev(offset + done, n, part, flags));
        }
        done += n;
    }
    return {};
}

// QEMU's bdrv_aligned_pwritev: the pwritev event (none for compressed
// writes), the driver call in max_transfer fragments (FUA the driver lacks
// is a flush of this node right after, before its write generation moves,
// as bdrv_driver_pwritev does), pwritev_done whatever the result, then the
// write generation moves on.
Status co_write_aligned(BlockNode* node, uint64_t offset, uint64_t bytes, IoVector& qiov,
                        uint32_t flags) {
    const uint32_t native = flags & node->supported_write_flags();
    if (!(flags & kReqWriteCompressed)) node->co_debug_event(BlkdebugEvent::kPwritev);
    Status s = co_write_fragments(node, offset, bytes, qiov, native);
    if (s.ok() && (flags & kReqFua) && !(native & kReqFua)) s = co_node_flush(node);
    node->co_debug_event(BlkdebugEvent::kPwritevDone);
    ++node->write_gen_;
    TRY(std::move(s));
    if (offset + bytes > node->size()) node->set_size(offset + bytes);
    return {};
}

bool memory_ok(const BlockNode* node, const IoVector& qiov) {
    return qiov.is_aligned(node->limits().memory_alignment) &&
           qiov.slice_count() <= node->limits().max_iov;
}

Status co_preadv_tracked(BlockNode* node, uint64_t offset, uint64_t bytes, IoVector& qiov,
                         uint32_t flags) {
    const uint64_t align = alignment_of(node);
    const uint64_t begin = align_down(offset, align);
    const uint64_t end = align_up(offset + bytes, align);
    RequestTracker tracker(node, begin, end, false);
    if (begin == offset && end == offset + bytes && memory_ok(node, qiov))
        return co_read_aligned(node, offset, bytes, qiov, flags);
    // Bounce: read the aligned cover into aligned memory and copy out.
    const size_t mem_align = std::max<size_t>(node->limits().memory_alignment, 64);
    for (uint64_t pos = begin; pos < end;) {
        const uint64_t n = std::min(end - pos, align_up(kMaxBounceChunk, align));
        AlignedBuffer bounce(n, std::max<size_t>(mem_align, 4096));
        IoVector biov = bounce.iov();
        TRY(co_read_aligned(node, pos, n, biov, flags));
        const uint64_t copy_begin = std::max(pos, offset);
        const uint64_t copy_end = std::min(pos + n, offset + bytes);
        qiov.copy_from(copy_begin - offset, bounce.data() + (copy_begin - pos),
                       copy_end - copy_begin);
        pos += n;
    }
    return {};
}

Status co_pwritev_tracked(BlockNode* node, uint64_t offset, uint64_t bytes, IoVector& qiov,
                          uint32_t flags) {
    const uint64_t align = alignment_of(node);
    const uint64_t begin = align_down(offset, align);
    const uint64_t end = align_up(offset + bytes, align);
    const bool aligned = begin == offset && end == offset + bytes;
    RequestTracker tracker(node, begin, end, !aligned);
    if (aligned && memory_ok(node, qiov)) return co_write_aligned(node, offset, bytes, qiov, flags);

    // Read-modify-write of the partial head and tail blocks, serialised
    // against overlapping requests by the tracker.
    const size_t mem_align = std::max<size_t>(node->limits().memory_alignment, 4096);
    for (uint64_t pos = begin; pos < end;) {
        const uint64_t n = std::min(end - pos, align_up(kMaxBounceChunk, align));
        AlignedBuffer bounce(n, mem_align);
        const uint64_t copy_begin = std::max(pos, offset);
        const uint64_t copy_end = std::min(pos + n, offset + bytes);
        const bool partial_head = copy_begin > pos;
        const bool partial_tail = copy_end < pos + n;
        // One block: read once (QEMU's merge_reads), with both events around it.
        const bool merged = (partial_head || partial_tail) && n == align;
        if (partial_head || merged) {
            if (partial_head) node->co_debug_event(BlkdebugEvent::kPwritevRmwHead);
            if (merged && partial_tail) node->co_debug_event(BlkdebugEvent::kPwritevRmwTail);
            IoVector head(bounce.data(), align);
            TRY(co_read_aligned(node, pos, align, head, 0));
            if (partial_head) node->co_debug_event(BlkdebugEvent::kPwritevRmwAfterHead);
            if (merged && partial_tail) node->co_debug_event(BlkdebugEvent::kPwritevRmwAfterTail);
        }
        if (partial_tail && !merged) {
            node->co_debug_event(BlkdebugEvent::kPwritevRmwTail);
            IoVector tail(bounce.data() + n - align, align);
            TRY(co_read_aligned(node, pos + n - align, align, tail, 0));
            node->co_debug_event(BlkdebugEvent::kPwritevRmwAfterTail);
        }
        qiov.copy_to(copy_begin - offset, bounce.data() + (copy_begin - pos),
                     copy_end - copy_begin);
        IoVector biov = bounce.iov();
        TRY(co_write_aligned(node, pos, n, biov, flags));
        pos += n;
    }
    return {};
}

// Zero buffers written where the driver cannot zero natively.
Status co_write_zero_buffers(BdrvChild* child, uint64_t offset, uint64_t bytes, uint32_t flags) {
    const uint64_t chunk_max = std::min<uint64_t>(bytes, 1ull << 20);
    AlignedBuffer zeros(chunk_max);
    for (uint64_t done = 0; done < bytes;) {
        uint64_t n = std::min(bytes - done, chunk_max);
        IoVector iov(zeros.data(), n);
        TRY(co_pwritev_tracked(child->node(), offset + done, n, iov, flags));
        done += n;
    }
    return {};
}

// Copy-on-read (QEMU's bdrv_co_do_copy_on_readv): runs not allocated in
// `node` itself are read (from its backing chain, through the node) and
// written back into the node right away, with the cor_write event and
// without the generic write events or a new write generation, as QEMU's
// driver-level COR write.
Status co_copy_on_read(BlockNode* node, uint64_t offset, uint64_t bytes, IoVector& qiov,
                       uint32_t flags) {
    // QEMU's bdrv_round_to_subclusters: copy whole clusters, so that the
    // format allocates them without reading the backing file again.
    uint64_t align = alignment_of(node);
    if (Result<NodeInfo> info = node->get_info();
        info.ok() && info->cluster_size > 0 && info->cluster_size <= int64_t{1} << 30 &&
        static_cast<uint64_t>(info->cluster_size) % align == 0)
        align = static_cast<uint64_t>(info->cluster_size);
    // Walk the cluster-aligned cover: unallocated runs are copied whole,
    // allocated ones are only read (never overwritten with backing data),
    // each limited to the bounce size (QEMU's MAX_BOUNCE_BUFFER).
    const uint64_t want_end = offset + bytes;
    const uint64_t cover_end = std::max(
        want_end, std::min(align_up(want_end, align), align_up(node->size(), alignment_of(node))));
    for (uint64_t pos = align_down(offset, align); pos < cover_end;) {
        ASSIGN_OR_RETURN(BlockStatus status,
                         co_node_block_status(node, pos, cover_end - pos, false));
        const uint64_t n = std::min({status.bytes, cover_end - pos, kMaxBounceChunk});
        const uint64_t copy_begin = std::max(pos, offset);
        if (n == 0) {  // past the end of the image: reads as zeros
            if (copy_begin < want_end) {
                IoVector part = qiov.slice(copy_begin - offset, want_end - copy_begin);
                TRY(co_preadv_tracked(node, copy_begin, want_end - copy_begin, part, flags));
            }
            break;
        }
        const uint64_t copy_end = std::min(pos + n, want_end);
        if (status.flags & kStatusAllocated) {
            if (copy_begin < copy_end) {
                IoVector part = qiov.slice(copy_begin - offset, copy_end - copy_begin);
                TRY(co_preadv_tracked(node, copy_begin, copy_end - copy_begin, part, flags));
            }
        } else {
            AlignedBuffer bounce(n, std::max<size_t>(node->limits().memory_alignment, 4096));
            IoVector biov = bounce.iov();
            {
                RequestTracker tracker(node, pos, pos + n, true);
                TRY(co_read_aligned(node, pos, n, biov, flags));
                node->co_debug_event(BlkdebugEvent::kCorWrite);
                // All zeros: a zero write where the driver has one (QEMU
                // does the same), so the copy stays sparse.
                Status zeroed = unsupported_error("data");
                if (biov.is_zero()) zeroed = node->co_pwrite_zeroes(pos, n, 0);
                if (!zeroed.ok() && zeroed.error().kind != ErrorKind::kUnsupported) return zeroed;
                if (!zeroed.ok()) TRY(co_write_fragments(node, pos, n, biov, 0));
            }
            if (copy_begin < copy_end)
                qiov.copy_from(copy_begin - offset, bounce.data() + (copy_begin - pos),
                               copy_end - copy_begin);
        }
        pos += n;
    }
    return {};
}

}  // namespace

Status co_child_preadv(BdrvChild* child, uint64_t offset, uint64_t bytes, IoVector& qiov,
                       uint32_t flags) {
    if (bytes == 0) return {};
    TRY(check_offset(offset, bytes));
    if (qiov.size() < bytes) return invalid_argument("read buffer smaller than the request");
    if (flags & kReqCopyOnRead) {
        BlockNode* node = child->node();
        flags &= ~(kReqFua | kReqCopyOnRead);
        if (!node->read_only() && (child->perm() & (kPermWrite | kPermWriteUnchanged))) {
            IoVector exact = qiov.slice(0, bytes);
            return co_copy_on_read(node, offset, bytes, exact, flags);
        }
    }
    if (qiov.size() == bytes)
        return co_preadv_tracked(child->node(), offset, bytes, qiov, flags & ~kReqFua);
    IoVector exact = qiov.slice(0, bytes);
    return co_preadv_tracked(child->node(), offset, bytes, exact, flags & ~kReqFua);
}

Status co_child_pwritev(BdrvChild* child, uint64_t offset, uint64_t bytes, IoVector& qiov,
                        uint32_t flags) {
    if (bytes == 0) return {};
    TRY(check_offset(offset, bytes));
    TRY(check_write_allowed(child));
    if (qiov.size() < bytes) return invalid_argument("write buffer smaller than the request");
    BlockNode* node = child->node();
    if (node->open_flags().detect_zeroes != DetectZeroes::kOff && !(flags & kReqWriteCompressed) &&
        qiov.is_zero()) {
        uint32_t zflags = flags & kReqFua;
        if (node->open_flags().detect_zeroes == DetectZeroes::kUnmap) zflags |= kReqMayUnmap;
        return co_child_pwrite_zeroes(child, offset, bytes, zflags);
    }
    // Compression is the format's job; nobody can emulate it below.
    if ((flags & kReqWriteCompressed) && !(node->supported_write_flags() & kReqWriteCompressed))
        return Error{ErrorKind::kUnsupported, ENOTSUP,
                     "compressed writes are not supported by " + node->driver().name, std::nullopt};
    if (qiov.size() == bytes) return co_pwritev_tracked(node, offset, bytes, qiov, flags);
    IoVector exact = qiov.slice(0, bytes);
    return co_pwritev_tracked(node, offset, bytes, exact, flags);
}

Status co_child_pread(BdrvChild* child, uint64_t offset, void* buf, size_t bytes) {
    IoVector iov(buf, bytes);
    return co_child_preadv(child, offset, bytes, iov);
}

Status co_child_pwrite(BdrvChild* child, uint64_t offset, const void* buf, size_t bytes,
                       uint32_t flags) {
    IoVector iov(const_cast<void*>(buf), bytes);
    return co_child_pwritev(child, offset, bytes, iov, flags);
}

Status co_child_pwrite_zeroes(BdrvChild* child, uint64_t offset, uint64_t bytes, uint32_t flags) {
    if (bytes == 0) return {};
    TRY(check_offset(offset, bytes));
    TRY(check_write_allowed(child));
    BlockNode* node = child->node();
    if (node->open_flags().discard != DiscardMode::kUnmap) flags &= ~kReqMayUnmap;
    const uint64_t request_align = alignment_of(node);
    const uint64_t align = std::max(request_align, node->limits().zero_alignment);
    const uint64_t max = node->limits().max_zero_write
                             ? std::max(align_down(node->limits().max_zero_write, align), align)
                             : (uint64_t{1} << 30);
    const uint32_t native = flags & (node->supported_zero_flags() | kReqMayUnmap);
    bool emulate_fua = (flags & kReqFua) && !(node->supported_zero_flags() & kReqFua);

    // Head up to the zero alignment, an aligned body in max-sized pieces,
    // then the tail; each piece tries the driver, then zero buffers. The
    // write generation moves after the FUA flush, as in QEMU.
    uint64_t generations = 0;
    for (uint64_t pos = offset, end = offset + bytes; pos < end;) {
        uint64_t n;
        if (pos % align)
            n = std::min(end - pos, align - pos % align);
        else if (end - pos >= align)
            n = std::min(align_down(end - pos, align), max);
        else
            n = end - pos;
        Status s = unsupported_error("unaligned");
        if (pos % request_align == 0 && n % request_align == 0) {
            RequestTracker tracker(node, pos, pos + n, false);
            node->co_debug_event(BlkdebugEvent::kPwritevZero);
            s = node->co_pwrite_zeroes(pos, n, native & ~(emulate_fua ? uint32_t{kReqFua} : 0u));
            node->co_debug_event(BlkdebugEvent::kPwritevDone);
            ++generations;
            if (s.ok() && pos + n > node->size()) node->set_size(pos + n);
        }
        if (!s.ok()) {
            if (s.error().kind != ErrorKind::kUnsupported || (flags & kReqNoFallback)) {
                node->write_gen_ += generations;
                return s;
            }
            TRY(co_write_zero_buffers(child, pos, n, 0));
            if (flags & kReqFua) emulate_fua = true;
        }
        pos += n;
    }
    Status flushed = emulate_fua ? co_node_flush(node) : Status{};
    node->write_gen_ += generations;
    return flushed;
}

Status co_child_pdiscard(BdrvChild* child, uint64_t offset, uint64_t bytes) {
    if (bytes == 0) return {};
    TRY(check_offset(offset, bytes));
    TRY(check_write_allowed(child));
    BlockNode* node = child->node();
    if (node->open_flags().discard != DiscardMode::kUnmap) return {};
    // Discard is advisory: granules not wholly covered are left alone.
    const uint64_t align = std::max(alignment_of(node), node->limits().discard_alignment);
    uint64_t begin = align_up(offset, align);
    uint64_t end = align_down(offset + bytes, align);
    if (offset + bytes >= node->size()) end = std::max(end, std::min(offset + bytes, node->size()));
    if (begin >= end) return {};
    const uint64_t max = node->limits().max_discard
                             ? std::max(align_down(node->limits().max_discard, align), align)
                             : (uint64_t{1} << 30);
    for (uint64_t pos = begin; pos < end;) {
        uint64_t n = std::min(end - pos, max);
        RequestTracker tracker(node, pos, pos + n, false);
        Status s = node->co_pdiscard(pos, n);
        ++node->write_gen_;
        if (!s.ok() && s.error().kind != ErrorKind::kUnsupported) return s;
        pos += n;
    }
    return {};
}

// bdrv_co_flush: flush_to_os and (when something was written since the last
// flush) flush_to_disk are announced to the node's primary child, around
// the driver's flush; then the children are flushed.
Status co_node_flush(BlockNode* node) {
    const bool writable = !node->read_only();
    const uint64_t gen = node->write_gen_;
    if (writable) co_debug_event(node->primary_child(), BlkdebugEvent::kFlushToOs);
    TRY(node->co_flush());
    if (writable && !node->open_flags().cache_no_flush && node->flushed_gen_ != gen)
        co_debug_event(node->primary_child(), BlkdebugEvent::kFlushToDisk);
    // Then whatever we may have written below (bdrv_co_flush's children).
    for (const auto& edge : node->children()) {
        if (!(edge->perm() & (kPermWrite | kPermWriteUnchanged))) continue;
        TRY(co_node_flush(edge->node()));
    }
    if (writable) node->flushed_gen_ = gen;
    return {};
}

Status co_child_flush(BdrvChild* child) {
    return co_node_flush(child->node());
}

Status co_child_truncate(BdrvChild* child, uint64_t size, bool exact, Prealloc prealloc,
                         bool shrink_ok) {
    BlockNode* node = child->node();
    if (node->read_only()) return make_error(ErrorKind::kReadOnly, "Image is read-only");
    if (!(child->perm() & kPermResize))
        return make_error(ErrorKind::kPermission,
                          "Resize permission not granted on " + node->node_name());
    if (size > (uint64_t{1} << 62)) return invalid_argument("Image size too large");
    co_drain(node);
    return node->co_truncate(size, exact, prealloc, shrink_ok);
}

Result<BlockStatus> co_node_block_status(BlockNode* node, uint64_t offset, uint64_t bytes,
                                         bool want_zero) {
    BlockStatus status;
    if (offset >= node->size() || bytes == 0) {
        status.flags = kStatusEof;
        status.bytes = 0;
        return status;
    }
    bytes = std::min(bytes, node->size() - offset);
    // Drivers answer for aligned ranges; widen, then trim back.
    const uint64_t align = alignment_of(node);
    const uint64_t begin = align_down(offset, align);
    const uint64_t end = std::min(align_up(offset + bytes, align), align_up(node->size(), align));
    ASSIGN_OR_RETURN(status, node->co_block_status(begin, end - begin, want_zero));
    if (status.bytes == 0 || status.bytes > end - begin)
        return make_error(ErrorKind::kInternal, node->driver().name + ": block status returned " +
                                                    std::to_string(status.bytes) + " bytes");
    // Runs are whole alignment blocks, so the one at `begin` covers `offset`.
    const uint64_t skipped = offset - begin;
    if (status.bytes <= skipped)
        return make_error(ErrorKind::kInternal,
                          node->driver().name + ": block status run shorter than the alignment");
    status.bytes = std::min(status.bytes - skipped, bytes);
    if (status.flags & kStatusOffsetValid) status.offset += skipped;

    if (status.flags & kStatusFinal) {
        status.flags &= ~(kStatusFinal | kStatusEof | kStatusRecurse);
    } else if (status.flags & (kStatusData | kStatusZero)) {
        status.flags |= kStatusAllocated;
    } else if (node->driver().supports_backing) {
        BdrvChild* backing = node->backing();
        if (!backing || (want_zero && offset >= backing->node()->size()))
            status.flags |= kStatusZero;
    }
    // Ask the file whether a mapped range is a hole (raw over sparse files,
    // preallocated formats).
    if (want_zero && (status.flags & kStatusRecurse) && (status.flags & kStatusOffsetValid) &&
        status.file && status.file != node && !(status.flags & kStatusZero)) {
        auto below = co_node_block_status(status.file, status.offset, status.bytes, true);
        if (below.ok() && (below->flags & kStatusZero) && below->bytes > 0) {
            status.flags |= kStatusZero;
            status.bytes = std::min(status.bytes, below->bytes);
        }
    }
    status.flags &= ~kStatusRecurse;
    if (offset + status.bytes >= node->size()) status.flags |= kStatusEof;
    return status;
}

Result<BlockStatus> co_block_status_above(BlockNode* top, BlockNode* base, uint64_t offset,
                                          uint64_t bytes, bool want_zero) {
    int depth = 0;
    BlockNode* node = top;
    bytes = offset < top->size() ? std::min(bytes, top->size() - offset) : 0;
    for (;;) {
        ASSIGN_OR_RETURN(BlockStatus status, co_node_block_status(node, offset, bytes, want_zero));
        status.depth = depth;
        if (status.bytes == 0) return status;
        BdrvChild* backing = node->backing();
        if ((status.flags & kStatusAllocated) || !backing || backing->node() == base) {
            if (node != top) status.flags &= ~kStatusEof;
            if (offset + status.bytes >= top->size()) status.flags |= kStatusEof;
            return status;
        }
        // Unallocated here: the backing decides this run.
        bytes = status.bytes;
        BlockNode* below = backing->node();
        if (offset >= below->size()) {
            status.flags |= kStatusZero;
            status.flags &= ~kStatusEof;
            if (offset + status.bytes >= top->size()) status.flags |= kStatusEof;
            return status;
        }
        bytes = std::min(bytes, below->size() - offset);
        node = below;
        ++depth;
    }
}

Result<uint64_t> co_is_allocated(BlockNode* top, uint64_t offset, uint64_t bytes, bool* allocated) {
    ASSIGN_OR_RETURN(BlockStatus status, co_node_block_status(top, offset, bytes, false));
    *allocated = (status.flags & kStatusAllocated) != 0;
    return status.bytes;
}

void co_drain(BlockNode* node) {
    while (node->in_flight_ > 0)
        node->drain_waiters_.co_wait();
}

}  // namespace coblock
