// BlockNode: one node of the graph (QEMU's BlockDriverState). A driver
// subclasses it and overrides the co_* hooks. Hooks are called only by the
// request layer (block/io.h), which guarantees what each comment says; a hook
// left alone has the documented default.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "block/debug_event.h"
#include "block/iovec.h"
#include "block/types.h"
#include "coroutine/co_queue.h"
#include "formats/result.h"

namespace coblock {

class BdrvChild;
struct BlockDriver;
struct CheckResult;

// What QEMU's bdrv_get_info reports: qemu-io's `info` prints it, and the
// compress filter aligns requests to the cluster size.
struct NodeInfo {
    int64_t cluster_size = 0;
    int64_t vm_state_offset = 0;
};

enum class CheckFix { kNone, kLeaks, kAll };

class BlockNode {
  public:
    explicit BlockNode(const BlockDriver& driver);
    virtual ~BlockNode();
    BlockNode(const BlockNode&) = delete;
    BlockNode& operator=(const BlockNode&) = delete;

    const BlockDriver& driver() const { return *driver_; }
    const std::string& node_name() const { return node_name_; }
    // What this node was opened from, for messages ("a.qcow2").
    const std::string& filename() const { return filename_; }
    uint64_t size() const { return size_; }
    const BlockLimits& limits() const { return limits_; }
    const OpenFlags& open_flags() const { return open_flags_; }
    bool read_only() const { return open_flags_.read_only; }
    // Flags the driver's co_pwritev honours natively (kReqFua); others are
    // emulated by the request layer.
    uint32_t supported_write_flags() const { return supported_write_flags_; }
    // Flags co_pwrite_zeroes honours (kReqMayUnmap, kReqFua).
    uint32_t supported_zero_flags() const { return supported_zero_flags_; }

    // Children in attachment order; `file()`/`backing()` find them by name.
    const std::vector<std::unique_ptr<BdrvChild>>& children() const { return children_; }
    BdrvChild* child(const std::string& name) const;
    BdrvChild* file() const { return child("file"); }
    BdrvChild* backing() const { return child("backing"); }
    // The first child with kRolePrimary (a filter's filtered child, a
    // format's file), or nullptr.
    BdrvChild* primary_child() const;
    const std::vector<BdrvChild*>& parents() const { return parents_; }

    // The options the node was opened with, for the graph query (JSON).
    const nlohmann::ordered_json& options_json() const { return options_json_; }

    // ---- Driver hooks ---------------------------------------------------
    // Every hook runs in a coroutine of the node's loop. For reads and
    // writes the request layer guarantees: offset and bytes are multiples of
    // limits().request_alignment, bytes <= max_transfer (when set), the range
    // lies within size(), qiov.size() == bytes and its slices satisfy
    // memory_alignment. Writes only reach a node opened read-write.

    // Default: an error (unsupported).
    virtual Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags);
    // `flags` holds only bits in supported_write_flags(); a driver that
    // writes compressed clusters advertises kReqWriteCompressed there (other
    // nodes never see such a write: the request layer refuses it with
    // ENOTSUP). Default: read-only error.
    virtual Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags);
    // Must make the range read as zeros. Return kUnsupported to make the
    // request layer write zero buffers instead (unless kReqNoFallback).
    // Default: kUnsupported.
    virtual Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags);
    // Advisory: may do nothing. Default: forwards to a filtered child, else
    // does nothing.
    virtual Status co_pdiscard(uint64_t offset, uint64_t bytes);
    // Makes completed writes durable. The request layer flushes children
    // after this returns. Default: success (nothing cached here).
    virtual Status co_flush();
    // Status of the run starting at `offset` (at most `bytes` long; aligned
    // to request_alignment). Default: for filters, the filtered child's
    // answer; for others "data, allocated" with offset mapping for protocols.
    virtual Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool want_zero);
    // Changes the size. `exact` false allows rounding up. Default: unsupported.
    virtual Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok);
    // Consistency check and repair. Default: unsupported (qemu-img exit 63).
    virtual Status co_check(CheckResult& result, CheckFix fix);
    // Driver-specific information as qemu-img info's "format-specific" JSON
    // (null when none) and the allocated size on the host (-1 when unknown).
    virtual nlohmann::ordered_json info_specific();
    virtual int64_t allocated_size();
    // Cluster size and VM state offset. Default: a filter answers for its
    // filtered child; other drivers have no answer (kUnsupported), as in
    // QEMU's bdrv_get_info.
    virtual Result<NodeInfo> get_info();
    // Called before the node is destroyed: write back caches and clean bits.
    // Errors are reported but the node closes anyway. Default: success.
    virtual Status co_close();
    // Reopen with new flags (read-only <-> read-write). Default: accepted.
    virtual Status co_reopen(const OpenFlags& flags);
    // True for filter drivers that pass I/O to one primary child.
    virtual bool is_filter() const { return false; }
    // Debug events (block/debug_event.h): raised on this node by its parent
    // driver. Only debug filters (blkdebug) act on them. Default: ignored.
    virtual void co_debug_event(BlkdebugEvent event);
    // Debug filters answer true and implement the breakpoint commands;
    // block/debug_event.h finds them. Defaults: kUnsupported / false.
    virtual bool is_debug_node() const { return false; }
    virtual Status debug_breakpoint(std::string_view event, std::string_view tag);
    virtual Status debug_remove_breakpoint(std::string_view tag);
    virtual Status debug_resume(std::string_view tag);
    virtual bool debug_is_suspended(std::string_view tag);
    // Backing file name recorded in the image (for info), empty if none.
    virtual std::string backing_filename() const { return {}; }
    virtual std::string backing_format() const { return {}; }

    // ---- Used by the block layer ---------------------------------------
    void set_node_name(std::string name) { node_name_ = std::move(name); }
    void set_filename(std::string filename) { filename_ = std::move(filename); }
    void set_options_json(nlohmann::ordered_json options) { options_json_ = std::move(options); }
    void set_open_flags(const OpenFlags& flags) { open_flags_ = flags; }
    void add_parent(BdrvChild* edge) { parents_.push_back(edge); }
    void remove_parent(BdrvChild* edge);
    // Attaches a child edge owned by this node (see graph.h for checks).
    BdrvChild* adopt_child(std::unique_ptr<BdrvChild> edge);
    std::unique_ptr<BdrvChild> release_child(BdrvChild* edge);

    // Request tracking (block/io.cc): in-flight requests in start order, for
    // serialising overlapping read-modify-write and for drain.
    struct TrackedRequest;
    TrackedRequest* tracked_head_ = nullptr;
    TrackedRequest* tracked_tail_ = nullptr;
    int serialising_in_flight_ = 0;
    int in_flight_ = 0;
    uint64_t request_sequence_ = 0;
    CoQueue drain_waiters_;
    // QEMU's write_gen/flushed_gen: bumped by every write, zero write and
    // discard; a flush whose generation is already flushed skips the
    // flush_to_disk event (and blkdebug's flush check).
    uint64_t write_gen_ = 0;
    uint64_t flushed_gen_ = 0;

    // Reference count: parents' edges and backends hold references; the
    // node closes when the last one goes (graph.h: node_ref/node_unref).
    int refcount_ = 0;

    // Drivers set these while opening (and set_size again when resized).
    void set_size(uint64_t size) { size_ = size; }
    BlockLimits& mutable_limits() { return limits_; }
    void set_supported_write_flags(uint32_t flags) { supported_write_flags_ = flags; }
    void set_supported_zero_flags(uint32_t flags) { supported_zero_flags_ = flags; }

    // Called when the permissions that parents hold on this node change
    // (cumulative over all parents). Protocol drivers mirror them into file
    // locks; failing refuses the graph change, and the previous state must
    // stay in force. Default: accepted.
    virtual Status update_permissions(uint32_t perm, uint32_t shared);

  private:
    const BlockDriver* driver_;
    std::string node_name_;
    std::string filename_;
    uint64_t size_ = 0;
    BlockLimits limits_;
    OpenFlags open_flags_;
    uint32_t supported_write_flags_ = 0;
    uint32_t supported_zero_flags_ = 0;
    std::vector<std::unique_ptr<BdrvChild>> children_;
    std::vector<BdrvChild*> parents_;
    nlohmann::ordered_json options_json_ = nlohmann::ordered_json::object();
};

}  // namespace coblock
