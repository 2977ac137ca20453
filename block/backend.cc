// BlockBackend: the device-facing root of a graph.
#include "block/backend.h"

#include "block/io.h"
#include "coroutine/coroutine.h"
#include "coroutine/run_sync.h"

namespace coblock {

namespace {

Status check_range(uint64_t length, uint64_t offset, uint64_t bytes) {
    if (offset > length || bytes > length - offset)
        return Error{ErrorKind::kOutOfRange, EIO,
                     "request at offset " + std::to_string(offset) + " length " +
                         std::to_string(bytes) + " is beyond the end of the image (" +
                         std::to_string(length) + " bytes)",
                     std::nullopt};
    return {};
}

int to_ret(const Status& s) {
    return s.ok() ? 0 : -s.error().as_errno();
}

}  // namespace

BlockBackend::BlockBackend(std::unique_ptr<BdrvChild> root)
    : root_(std::move(root)), loop_(&EventLoop::current()) {}

BlockBackend::~BlockBackend() {
    drain();
    if (root_) {
        if (in_coroutine()) {
            root_.reset();
        } else {
            run_sync(*loop_, [this] { root_.reset(); });
        }
    }
}

Result<std::unique_ptr<BlockBackend>> BlockBackend::open(const std::string& filename,
                                                         qapi::OptionsTree options,
                                                         const OpenFlags& flags,
                                                         std::vector<std::string>* warnings) {
    return run_sync([&]() -> Result<std::unique_ptr<BlockBackend>> {
        ASSIGN_OR_RETURN(NodeRef node,
                         co_open_node(filename, std::move(options), flags, true, warnings));
        const OpenFlags& final_flags = node->open_flags();
        uint32_t perm = final_flags.no_io ? 0u : uint32_t{kPermConsistentRead};
        if (!final_flags.read_only) perm |= kPermWrite | kPermResize;
        uint32_t shared =
            final_flags.force_share ? kPermAll : kPermConsistentRead | kPermWriteUnchanged;
        ASSIGN_OR_RETURN(std::unique_ptr<BlockBackend> blk, attach(node.get(), perm, shared));
        blk->set_writethrough(final_flags.writethrough);
        return blk;
    });
}

Result<std::unique_ptr<BlockBackend>> BlockBackend::attach(BlockNode* node, uint32_t perm,
                                                           uint32_t shared) {
    ASSIGN_OR_RETURN(
        std::unique_ptr<BdrvChild> edge,
        attach_child(nullptr, "block device", node, "root", kRoleFilteredChild, perm, shared));
    return std::unique_ptr<BlockBackend>(new BlockBackend(std::move(edge)));
}

BlockNode* BlockBackend::root() const {
    return root_ ? root_->node() : nullptr;
}

uint64_t BlockBackend::length() const {
    return root_ ? root_->node()->size() : 0;
}

// ---- Coroutine calls -----------------------------------------------------------

Status BlockBackend::co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) {
    TRY(check_range(length(), offset, bytes));
    // -C / copy-on-read: the root populates itself from its backing chain.
    if (root_->node()->open_flags().copy_on_read) flags |= kReqCopyOnRead;
    return co_child_preadv(root_.get(), offset, bytes, qiov, flags);
}

Status BlockBackend::co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) {
    TRY(check_range(length(), offset, bytes));
    // Writethrough is FUA on every write, as QEMU's BlockBackend does: the
    // first node without native FUA flushes itself (which is what makes
    // the flush events of blkdebug.md §11.2 come out as in QEMU).
    return co_child_pwritev(root_.get(), offset, bytes, qiov,
                            writethrough_ ? flags | kReqFua : flags);
}

Status BlockBackend::co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
    TRY(check_range(length(), offset, bytes));
    return co_child_pwrite_zeroes(root_.get(), offset, bytes,
                                  writethrough_ ? flags | kReqFua : flags);
}

Status BlockBackend::co_pdiscard(uint64_t offset, uint64_t bytes) {
    TRY(check_range(length(), offset, bytes));
    return co_child_pdiscard(root_.get(), offset, bytes);
}

Status BlockBackend::co_flush() {
    return co_child_flush(root_.get());
}

Status BlockBackend::co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) {
    return co_child_truncate(root_.get(), size, exact, prealloc, shrink_ok);
}

// ---- Synchronous calls -----------------------------------------------------------

Status BlockBackend::pread(uint64_t offset, void* buf, size_t bytes) {
    return run_sync(*loop_, [&] {
        IoVector iov(buf, bytes);
        return co_preadv(offset, bytes, iov);
    });
}

Status BlockBackend::pwrite(uint64_t offset, const void* buf, size_t bytes, uint32_t flags) {
    return run_sync(*loop_, [&] {
        IoVector iov(const_cast<void*>(buf), bytes);
        return co_pwritev(offset, bytes, iov, flags);
    });
}

Status BlockBackend::pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
    return run_sync(*loop_, [&] { return co_pwrite_zeroes(offset, bytes, flags); });
}

Status BlockBackend::pdiscard(uint64_t offset, uint64_t bytes) {
    return run_sync(*loop_, [&] { return co_pdiscard(offset, bytes); });
}

Status BlockBackend::flush() {
    return run_sync(*loop_, [&] { return co_flush(); });
}

Status BlockBackend::truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) {
    return run_sync(*loop_, [&] { return co_truncate(size, exact, prealloc, shrink_ok); });
}

// ---- Callback calls --------------------------------------------------------------

// Runs `fn` in a pooled coroutine and reports through `done`. A request that
// completes before submit() returns reports from a bottom half instead, so a
// completion never runs inside the submitting call (as QEMU's blk_aio_*).
template <class Fn>
void BlockBackend::submit(Completion done, void* opaque, Fn&& fn) {
    ++in_flight_;
    // Points at a flag on the coroutine's stack, set before its first yield,
    // i.e. while we are still inside enter() below.
    bool* still_submitting = nullptr;
    EventLoop* loop = loop_;
    Coroutine* co = Coroutine::create([this, done, opaque, fn, &still_submitting, loop]() mutable {
        bool submitting = true;
        still_submitting = &submitting;
        const int ret = to_ret(fn());
        if (submitting) {
            Coroutine* self = Coroutine::self();
            BottomHalf defer(*loop, [self] { wake(self); });
            defer.schedule();
            yield();
        }
        --in_flight_;
        done(opaque, ret);
    });
    enter(co);
    // The coroutine is suspended either inside fn or waiting for `defer`.
    *still_submitting = false;
}

void BlockBackend::aio_preadv(uint64_t offset, IoVector* qiov, Completion done, void* opaque) {
    submit(done, opaque, [this, offset, qiov] { return co_preadv(offset, qiov->size(), *qiov); });
}

void BlockBackend::aio_pwritev(uint64_t offset, IoVector* qiov, Completion done, void* opaque,
                               uint32_t flags) {
    submit(done, opaque,
           [this, offset, qiov, flags] { return co_pwritev(offset, qiov->size(), *qiov, flags); });
}

void BlockBackend::aio_flush(Completion done, void* opaque) {
    submit(done, opaque, [this] { return co_flush(); });
}

void BlockBackend::aio_pdiscard(uint64_t offset, uint64_t bytes, Completion done, void* opaque) {
    submit(done, opaque, [this, offset, bytes] { return co_pdiscard(offset, bytes); });
}

void BlockBackend::aio_pwrite_zeroes(uint64_t offset, uint64_t bytes, Completion done, void* opaque,
                                     uint32_t flags) {
    submit(done, opaque,
           [this, offset, bytes, flags] { return co_pwrite_zeroes(offset, bytes, flags); });
}

void BlockBackend::drain() {
    if (in_flight_ == 0) return;
    if (in_coroutine()) {
        while (in_flight_ > 0) {
            Coroutine* self = Coroutine::self();
            BottomHalf again(*loop_, [self] { wake(self); });
            again.schedule();
            yield();
        }
        return;
    }
    loop_->run_until([this] { return in_flight_ == 0; });
}

}  // namespace coblock
