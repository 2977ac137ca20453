// QcowNode: a qcow version 1 image (QEMU's block/qcow.c) over its file child,
// with an optional backing node (looked up as the "backing" child on every
// use, so graph changes that replace it are followed). Metadata (L1, the L2 cache, allocation at
// the end of the file, the compressed-cluster cache) is guarded by one CoMutex; reads and rewrites
// of allocated clusters run outside it. Newly allocated clusters are written under the lock, in the
// crash-safe order: contents, flush, then the pointer (L2 table before its L1 entry, data before
// its L2 entry), each pointer write followed by a flush.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block/child.h"
#include "block/graph.h"
#include "block/node.h"
#include "coroutine/co_mutex.h"
#include "coroutine/co_sequencer.h"
#include "drivers/qcow/qcow_l2_cache.h"
#include "formats/qcow/qcow_header.h"
#include "formats/qcow/qcow_tables.h"

namespace coblock::qcow {

class QcowNode final : public BlockNode {
  public:
    explicit QcowNode(const BlockDriver& driver) : BlockNode(driver) {}

    // Opens the file child, reads and checks the header (QEMU's order and
    // messages first), the L1 table and the backing file name, and opens the
    // backing node unless flags.no_backing.
    Status co_init(OpenContext& ctx);

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) override;
    std::string backing_filename() const override { return backing_name_; }
    Result<NodeInfo> get_info() override {
        return NodeInfo{static_cast<int64_t>(geometry_.cluster_size()), 0};
    }

    const Header& header() const { return header_; }
    const Geometry& geometry() const { return geometry_; }
    const L2Cache& l2_cache() const { return l2_cache_; }

  private:
    // Where a guest cluster's L2 entry lives (the table is in l2_cache_).
    struct L2Slot {
        uint64_t l2_offset = 0;  // 0: no L2 table (only when not allocating)
        uint64_t index = 0;
    };

    // An AES image opened for metadata only (no_io) serves no data.
    Status check_not_encrypted() const;

    // File I/O that, like QEMU's file protocol, reads zeros past the end.
    Status co_read_file(uint64_t offset, void* buf, uint64_t bytes);
    Status co_write_file_sync(uint64_t offset, const void* buf, uint64_t bytes);
    uint64_t file_length() const;

    // Lock held for all of these.
    Result<std::vector<uint64_t>*> co_load_l2(uint64_t l2_offset);
    Result<L2Slot> co_find_l2(uint64_t guest_offset, bool allocate);
    Result<L2Entry> co_lookup(uint64_t guest_offset, L2Slot* slot, bool allocate);
    Status co_decompress(const L2Entry& entry);
    Status co_write_l2_entry(const L2Slot& slot, uint64_t raw, bool compressed);
    uint64_t run_bytes(uint64_t pos, uint64_t max, const L2Slot& slot, const L2Entry& first);
    Status co_cluster_base(uint64_t cluster_start, AlignedBuffer& buffer);
    Status co_allocate_run(uint64_t guest_offset, uint64_t bytes, IoVector& part,
                           const L2Slot& slot);
    Status co_allocate_cluster(uint64_t guest_offset, uint64_t bytes, IoVector& part,
                               const L2Slot& slot, const L2Entry& old);

    // Reads `bytes` of guest data at `guest_offset` from the backing node
    // (zeros beyond its end, or without one).
    Status co_read_backing(uint64_t guest_offset, uint64_t bytes, IoVector& qiov);
    Status co_pwritev_compressed(uint64_t offset, uint64_t bytes, IoVector& qiov);

    BdrvChild* file_ = nullptr;
    Header header_;
    Geometry geometry_;
    std::vector<uint64_t> l1_;
    std::string backing_name_;
    bool encrypted_ = false;
    CoMutex lock_;
    // Compressed clusters are appended in the order their writes arrived
    // (see co_pwritev_compressed).
    CoSequencer compressed_order_;
    L2Cache l2_cache_;
    // The last decompressed cluster, keyed by the compressed data's offset
    // (QEMU's cluster_cache); any write invalidates it.
    // Longest run of new clusters written (and held in memory) at once.
    static constexpr uint64_t kMaxAllocationRun = uint64_t{4} << 20;
    static constexpr uint64_t kNoCachedCluster = ~uint64_t{0};
    uint64_t cached_coffset_ = kNoCachedCluster;
    std::vector<std::byte> cluster_cache_;
};

}  // namespace coblock::qcow
