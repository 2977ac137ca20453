// BlockNode: defaults of the driver hooks and child bookkeeping.
#include "block/node.h"

#include <algorithm>

#include "block/check.h"
#include "block/child.h"
#include "block/driver.h"
#include "block/io.h"

namespace coblock {

BlockNode::BlockNode(const BlockDriver& driver) : driver_(&driver) {}

// Children go first (their edges drop references); parents have already
// detached, or we would not be here.
BlockNode::~BlockNode() {
    while (!children_.empty())
        children_.pop_back();
}

BdrvChild* BlockNode::child(const std::string& name) const {
    for (const auto& edge : children_)
        if (edge->name() == name) return edge.get();
    return nullptr;
}

BdrvChild* BlockNode::primary_child() const {
    for (const auto& edge : children_)
        if (edge->role() & kRolePrimary) return edge.get();
    return nullptr;
}

void BlockNode::remove_parent(BdrvChild* edge) {
    parents_.erase(std::remove(parents_.begin(), parents_.end(), edge), parents_.end());
}

BdrvChild* BlockNode::adopt_child(std::unique_ptr<BdrvChild> edge) {
    children_.push_back(std::move(edge));
    return children_.back().get();
}

std::unique_ptr<BdrvChild> BlockNode::release_child(BdrvChild* edge) {
    for (auto it = children_.begin(); it != children_.end(); ++it) {
        if (it->get() != edge) continue;
        std::unique_ptr<BdrvChild> out = std::move(*it);
        children_.erase(it);
        return out;
    }
    return nullptr;
}

Status BlockNode::co_preadv(uint64_t, uint64_t, IoVector&, uint32_t) {
    return unsupported_error(driver_->name + ": reads are not supported");
}

Status BlockNode::co_pwritev(uint64_t, uint64_t, IoVector&, uint32_t) {
    return make_error(ErrorKind::kReadOnly, driver_->name + ": writes are not supported");
}

Status BlockNode::co_pwrite_zeroes(uint64_t, uint64_t, uint32_t) {
    return unsupported_error(driver_->name + ": zero writes are not supported");
}

Status BlockNode::co_pdiscard(uint64_t offset, uint64_t bytes) {
    if (is_filter())
        if (BdrvChild* below = primary_child()) return co_child_pdiscard(below, offset, bytes);
    return {};
}

Status BlockNode::co_flush() {
    return {};
}

Result<BlockStatus> BlockNode::co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) {
    if (is_filter()) {
        if (BdrvChild* below = primary_child()) {
            // QEMU's BDRV_BLOCK_RAW: the child decided allocation too (an
            // unallocated qcow2 run stays unallocated above the filter).
            ASSIGN_OR_RETURN(BlockStatus status,
                             co_node_block_status(below->node(), offset, bytes, want_zero));
            status.flags |= kStatusFinal;
            return status;
        }
    }
    BlockStatus status;
    status.bytes = bytes;
    status.flags = kStatusData | kStatusAllocated;
    if (driver_->kind == DriverKind::kProtocol) {
        status.flags |= kStatusOffsetValid;
        status.offset = offset;
        status.file = this;
    }
    return status;
}

Status BlockNode::co_truncate(uint64_t, bool, Prealloc, bool) {
    return unsupported_error("Image format driver does not support resize");
}

Status BlockNode::co_check(CheckResult&, CheckFix) {
    return unsupported_error("This image format does not support checks");
}

nlohmann::ordered_json BlockNode::info_specific() {
    return nullptr;
}

Result<NodeInfo> BlockNode::get_info() {
    if (is_filter()) {
        if (BdrvChild* filtered = primary_child()) return filtered->node()->get_info();
    }
    return unsupported_error(driver_->name + ": no driver information");
}

// Like QEMU's bdrv_sum_allocated_file_size: what the storage children use.
int64_t BlockNode::allocated_size() {
    int64_t total = -1;
    for (const auto& edge : children_) {
        if (!(edge->role() & (kRoleData | kRoleMetadata))) continue;
        int64_t n = edge->node()->allocated_size();
        if (n < 0) return n;
        total = (total < 0 ? 0 : total) + n;
    }
    return total;
}

Status BlockNode::co_close() {
    return {};
}

Status BlockNode::co_reopen(const OpenFlags&) {
    return {};
}

void BlockNode::co_debug_event(BlkdebugEvent) {}

Status BlockNode::debug_breakpoint(std::string_view, std::string_view) {
    return unsupported_error("not a debug node");
}

Status BlockNode::debug_remove_breakpoint(std::string_view) {
    return unsupported_error("not a debug node");
}

Status BlockNode::debug_resume(std::string_view) {
    return unsupported_error("not a debug node");
}

bool BlockNode::debug_is_suspended(std::string_view) {
    return false;
}

Status BlockNode::update_permissions(uint32_t, uint32_t) {
    return {};
}

}  // namespace coblock
