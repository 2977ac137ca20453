// copy-on-read: the filter that populates its file node from the backing
// chain as data is read (QEMU 7.2 block/copy-on-read.c). Reads go down with
// kReqCopyOnRead, so the request layer copies every run its file does not
// hold yet into it; with `bottom=NODE` only runs that the chain holds down
// to (and including) that node are copied, as QEMU's frozen-chain mode.
// Writes, zero writes, discards, compressed writes and resizes pass through.
#include <memory>
#include <string>

#include "block/child.h"
#include "block/driver.h"
#include "block/graph.h"
#include "block/io.h"

namespace coblock {
namespace {

const BlockDriver& copy_on_read_driver();

class CopyOnReadNode final : public BlockNode {
  public:
    CopyOnReadNode() : BlockNode(copy_on_read_driver()) {}

    // Takes the limits and flags of the file child once it is attached.
    void init(BlockNode* bottom) {
        file_ = file();
        bottom_ = bottom;
        if (bottom) bottom_ref_ = NodeRef(bottom);  // QEMU's bdrv_ref(bottom_bs)
        BlockNode* below = file_->node();
        set_size(below->size());
        mutable_limits() = below->limits();
        // FUA and compressed writes reach the file as they are (QEMU's
        // cor_co_pwritev_compressed passes the latter through).
        set_supported_write_flags(below->supported_write_flags() & (kReqFua | kReqWriteCompressed));
        set_supported_zero_flags(below->supported_zero_flags() &
                                 (kReqFua | kReqMayUnmap | kReqNoFallback));
    }

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        if (!bottom_) return co_child_preadv(file_, offset, bytes, qiov, flags | kReqCopyOnRead);
        return co_preadv_above_bottom(offset, bytes, qiov, flags);
    }

    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        return co_child_pwritev(file_, offset, bytes, qiov, flags);
    }

    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
        return co_child_pwrite_zeroes(file_, offset, bytes, flags);
    }

    Status co_pdiscard(uint64_t offset, uint64_t bytes) override {
        return co_child_pdiscard(file_, offset, bytes);
    }

    // QEMU's bdrv_co_truncate hands a filter's resize to its filtered child.
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override {
        TRY(co_child_truncate(file_, size, exact, prealloc, shrink_ok));
        set_size(file_->node()->size());
        return {};
    }

    bool is_filter() const override { return true; }

  private:
    // QEMU's cor_co_preadv_part with a frozen chain: a run the file lacks is
    // copied only when some node from the file's backing down to `bottom`
    // holds it; runs above nothing (below bottom) are read, not copied.
    Status co_preadv_above_bottom(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) {
        BlockNode* top = file_->node();
        uint64_t done = 0;
        while (done < bytes) {
            const uint64_t pos = offset + done;
            uint32_t local_flags = flags;
            bool allocated = false;
            // An error asking is treated as "not allocated": the read below
            // will then fail with the real reason, as in QEMU.
            Result<uint64_t> run = co_is_allocated(top, pos, bytes - done, &allocated);
            uint64_t n = run.ok() ? *run : bytes - done;
            if (!run.ok() || !allocated) {
                // Nothing below the file: there is nothing to copy.
                if (BdrvChild* backing = top->backing()) {
                    BdrvChild* below_bottom = bottom_->backing();
                    Result<BlockStatus> st = co_block_status_above(
                        backing->node(), below_bottom ? below_bottom->node() : nullptr, pos, n,
                        false);
                    if (!st.ok() || (st->flags & kStatusAllocated)) local_flags |= kReqCopyOnRead;
                    if (st.ok() && st->bytes > 0) n = std::min(n, st->bytes);
                }
            }
            if (n == 0) n = bytes - done;  // past the chain's answers: a plain read
            IoVector part = qiov.slice(done, n);
            TRY(co_child_preadv(file_, pos, n, part, local_flags));
            done += n;
        }
        return {};
    }

    BdrvChild* file_ = nullptr;
    BlockNode* bottom_ = nullptr;
    NodeRef bottom_ref_;
};

// The chain below `top` through backing edges and filters' children.
bool in_backing_chain(BlockNode* top, BlockNode* wanted) {
    for (BlockNode* node = top; node;) {
        if (node == wanted) return true;
        BdrvChild* next = node->backing();
        if (!next && node->is_filter()) next = node->primary_child();
        node = next ? next->node() : nullptr;
    }
    return false;
}

Result<std::unique_ptr<BlockNode>> co_open_copy_on_read(OpenContext& ctx) {
    std::optional<std::string> bottom_name = ctx.options().take("bottom");
    BlockNode* bottom = nullptr;
    if (bottom_name) {
        bottom = find_node(*bottom_name);
        if (!bottom) return invalid_argument("Bottom node '" + *bottom_name + "' not found");
        if (bottom->is_filter())
            return invalid_argument("Bottom node '" + *bottom_name + "' is a filter");
    }
    auto node = std::make_unique<CopyOnReadNode>();
    TRY(ctx.co_open_child(*node, "file", kRoleFilteredChild, ctx.filename(),
                          /*probe_format=*/false));
    BlockNode* below = node->file()->node();
    // QEMU's cor_child_perm always takes write-unchanged on the file, so a
    // read-only file refuses the filter.
    if (below->read_only()) return make_error(ErrorKind::kReadOnly, "Block node is read-only");
    BdrvChild* edge = node->file();
    TRY(update_edge_permissions(edge, edge->perm() | kPermWriteUnchanged,
                                edge->shared() | kPermWriteUnchanged));
    if (bottom && !in_backing_chain(below, bottom))
        return invalid_argument("Bottom node '" + *bottom_name +
                                "' is not in the backing chain of '" + below->node_name() + "'");
    node->init(bottom);
    return std::unique_ptr<BlockNode>(std::move(node));
}

// QEMU's filters have no protocol prefix: a filename names their file
// child, so they open the way formats do (and are listed as formats).
const BlockDriver kCopyOnRead{
    .name = "copy-on-read", .kind = DriverKind::kFormat, .co_open = co_open_copy_on_read};

const BlockDriver& copy_on_read_driver() {
    return kCopyOnRead;
}

void register_copy_on_read_driver() {
    register_block_driver(&kCopyOnRead);
}

}  // namespace
}  // namespace coblock

block_init(coblock::register_copy_on_read_driver);
