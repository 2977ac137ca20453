// MemoryNode: a vector-backed protocol node that also checks that the
// request layer kept its promises (alignment, bounds).
#include "drivers/memory/memory_node.h"

#include <algorithm>
#include <cstring>

#include "block/driver.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"

namespace coblock {

namespace {
const BlockDriver kMemoryDriver{.name = "memory", .kind = DriverKind::kProtocol};
}  // namespace

MemoryNode::MemoryNode(std::vector<std::byte> bytes, MemoryNodeOptions options)
    : BlockNode(kMemoryDriver), bytes_(std::move(bytes)), options_(std::move(options)) {
    mutable_limits() = options_.limits;
    set_size(bytes_.size());
    set_supported_zero_flags(kReqMayUnmap);
}

// A broken promise of the request layer is reported as kInternal, so a test
// sees it as a failure instead of silently passing.
Status MemoryNode::check_request(uint64_t offset, uint64_t bytes, uint64_t qiov_size) const {
    const BlockLimits& l = limits();
    if (offset % l.request_alignment || bytes % l.request_alignment)
        return make_error(
            ErrorKind::kInternal,
            "memory: unaligned request " + std::to_string(offset) + "+" + std::to_string(bytes));
    if (l.max_transfer && bytes > l.max_transfer)
        return make_error(ErrorKind::kInternal, "memory: request exceeds max_transfer");
    if (qiov_size != bytes) return make_error(ErrorKind::kInternal, "memory: qiov size mismatch");
    return {};
}

void MemoryNode::complete() {
    if (!options_.async) return;
    do {
        Coroutine* self = Coroutine::self();
        BottomHalf bh(EventLoop::current(), [self] { wake(self); });
        bh.schedule();
        yield();
    } while (options_.complete_now && !options_.complete_now());
}

Status MemoryNode::check_max_size(uint64_t end) const {
    if (options_.max_size && end > options_.max_size && end > bytes_.size())
        return make_error(ErrorKind::kNoSpace, "memory: " + std::to_string(end) +
                                                   " bytes exceed max_size " +
                                                   std::to_string(options_.max_size));
    return {};
}

void MemoryNode::grow_to(uint64_t end) {
    if (end > bytes_.size()) bytes_.resize(end);
}

Status MemoryNode::co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) {
    TRY(check_request(offset, bytes, qiov.size()));
    if (!qiov.is_aligned(limits().memory_alignment))
        return make_error(ErrorKind::kInternal, "memory: misaligned read buffer");
    complete();
    ++reads_;
    uint64_t avail = offset < bytes_.size() ? std::min<uint64_t>(bytes, bytes_.size() - offset) : 0;
    if (avail) qiov.copy_from(0, bytes_.data() + offset, avail);
    if (avail < bytes) qiov.fill(avail, 0, bytes - avail);
    return {};
}

Status MemoryNode::co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) {
    TRY(check_request(offset, bytes, qiov.size()));
    if (!qiov.is_aligned(limits().memory_alignment))
        return make_error(ErrorKind::kInternal, "memory: misaligned write buffer");
    if (!options_.growable && offset + bytes > bytes_.size())
        return make_error(ErrorKind::kNoSpace, "memory: write beyond the end");
    TRY(check_max_size(offset + bytes));
    // Copy before yielding, as a DMA would read the buffer at submission.
    grow_to(offset + bytes);
    std::vector<std::byte> data(bytes);
    qiov.copy_to(0, data.data(), bytes);
    complete();
    grow_to(offset + bytes);
    std::memcpy(bytes_.data() + offset, data.data(), bytes);
    ++writes_;
    return {};
}

Status MemoryNode::co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t) {
    if (!options_.native_zero_writes) return unsupported_error("memory: no native zero writes");
    TRY(check_request(offset, bytes, bytes));
    TRY(check_max_size(offset + bytes));
    complete();
    grow_to(offset + bytes);
    std::memset(bytes_.data() + offset, 0, bytes);
    return {};
}

Status MemoryNode::co_pdiscard(uint64_t offset, uint64_t bytes) {
    complete();
    if (offset < bytes_.size())
        std::memset(bytes_.data() + offset, 0, std::min<uint64_t>(bytes, bytes_.size() - offset));
    return {};
}

Status MemoryNode::co_flush() {
    complete();
    ++flushes_;
    return {};
}

Status MemoryNode::co_truncate(uint64_t size, bool, Prealloc, bool shrink_ok) {
    if (size < bytes_.size() && !shrink_ok)
        return invalid_argument("memory: shrinking needs shrink_ok");
    TRY(check_max_size(size));
    bytes_.resize(size);
    set_size(size);
    return {};
}

}  // namespace coblock
