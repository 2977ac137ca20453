// The qcow2 format driver (QEMU's block/qcow2*.c): one node per image.
// Metadata (L1, L2 tables, refcount table and blocks, header fields) is
// touched only under `lock_`; guest data I/O runs without it.
//
// Concurrency scheme (a simplification of QEMU's in-flight allocation
// lists): every request that changes L2 entries holds a guest range in
// `alloc_ranges_` from the moment it reads the mapping until its new
// entries are linked: allocating writes hold the clusters they may allocate
// (so two writes to one unallocated cluster serialise, and writes to other
// clusters proceed in parallel); zero writes, discards, truncate,
// preallocation and check hold the whole disk. Reads and in-place writes
// (clusters with COPIED set) take no range.
//
// Crash ordering follows QEMU's cache dependencies (qcow2-notes.md §6):
// refcount blocks reach the disk (and a flush) before L2 tables that use the
// clusters they count; L2 tables that dropped references reach the disk
// before the refcount blocks showing the lower counts; new guest data is
// flushed before an L2 table pointing at it is written; L1 entries and new
// L2 tables are written synchronously.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "block/check.h"
#include "block/child.h"
#include "block/graph.h"
#include "block/node.h"
#include "coroutine/co_mutex.h"
#include "coroutine/co_queue.h"
#include "coroutine/co_sequencer.h"
#include "formats/qcow2/image_header.h"
#include "formats/qcow2/l2_entry.h"
#include "formats/qcow2/snapshot.h"

namespace coblock::qcow2drv {

// Runtime options (QEMU's qcow2 open options).
struct Qcow2Options {
    std::optional<uint64_t> l2_cache_size;
    std::optional<uint64_t> l2_cache_entry_size;
    std::optional<uint64_t> refcount_cache_size;
    std::optional<uint64_t> cache_size;
    std::optional<bool> lazy_refcounts;
    std::optional<std::string> overlap_check;
    std::optional<bool> pass_discard_request;
    std::optional<bool> pass_discard_snapshot;
    std::optional<bool> pass_discard_other;
    std::optional<uint64_t> cache_clean_interval;
};

// Overlap check bits (qcow2-notes.md §9).
enum OverlapBit : uint32_t {
    kOverlapMainHeader = 1u << 0,
    kOverlapActiveL1 = 1u << 1,
    kOverlapActiveL2 = 1u << 2,
    kOverlapRefcountTable = 1u << 3,
    kOverlapRefcountBlock = 1u << 4,
    kOverlapSnapshotTable = 1u << 5,
    kOverlapInactiveL1 = 1u << 6,
    kOverlapInactiveL2 = 1u << 7,
    kOverlapBitmapDirectory = 1u << 8,
};
inline constexpr uint32_t kOverlapConstant = kOverlapMainHeader | kOverlapActiveL1 |
                                             kOverlapRefcountTable | kOverlapSnapshotTable |
                                             kOverlapBitmapDirectory;
inline constexpr uint32_t kOverlapCached =
    kOverlapConstant | kOverlapActiveL2 | kOverlapRefcountBlock | kOverlapInactiveL1;
inline constexpr uint32_t kOverlapAll = kOverlapCached | kOverlapInactiveL2;

// A write-back cache of whole metadata clusters (L2 tables or refcount
// blocks), least recently used first out.
class MetaCache {
  public:
    struct Entry {
        uint64_t offset = 0;
        std::vector<std::byte> data;
        bool dirty = false;
        uint64_t last_use = 0;
    };
    explicit MetaCache(size_t capacity) : capacity_(capacity < 2 ? 2 : capacity) {}
    Entry* find(uint64_t offset);
    // Inserts a fresh entry (caller fills data); may leave the cache over
    // capacity: the owner evicts with `victim()`.
    Entry* insert(uint64_t offset, std::vector<std::byte> data);
    // The least recently used entry other than `keep`, when over capacity.
    Entry* victim(uint64_t keep);
    void erase(uint64_t offset) { entries_.erase(offset); }
    std::vector<Entry*> dirty_entries();
    bool any_dirty() const;
    size_t capacity() const { return capacity_; }
    size_t size() const { return entries_.size(); }
    void clear() { entries_.clear(); }

  private:
    size_t capacity_;
    uint64_t clock_ = 0;
    std::unordered_map<uint64_t, std::unique_ptr<Entry>> entries_;
};

// Guest ranges reserved by requests that change L2 entries.
class AllocRanges {
  public:
    // Waits until [start, end) overlaps no reserved range, then reserves it.
    void co_acquire(uint64_t start, uint64_t end);
    void release(uint64_t start, uint64_t end);

  private:
    std::list<std::pair<uint64_t, uint64_t>> active_;
    CoQueue waiters_;
};

class AllocRangeGuard {
  public:
    AllocRangeGuard(AllocRanges& ranges, uint64_t start, uint64_t end)
        : ranges_(ranges), start_(start), end_(end) {
        ranges_.co_acquire(start, end);
    }
    ~AllocRangeGuard() { ranges_.release(start_, end_); }
    AllocRangeGuard(const AllocRangeGuard&) = delete;
    AllocRangeGuard& operator=(const AllocRangeGuard&) = delete;

  private:
    AllocRanges& ranges_;
    uint64_t start_, end_;
};
inline constexpr uint64_t kWholeDisk = ~uint64_t{0};

// The mapping of a guest range (result of get_mapping).
struct Mapping {
    qcow2::SubclusterType type = qcow2::SubclusterType::kUnallocatedPlain;
    uint64_t bytes = 0;        // guest bytes from the start offset with this mapping
    uint64_t host_offset = 0;  // normal / zero-alloc: host byte of the start offset
    qcow2::L2Entry entry;      // compressed: the descriptor
    bool in_place = false;     // allocated, COPIED, fully allocated: write in place
};

class Qcow2Node final : public BlockNode {
  public:
    explicit Qcow2Node(const BlockDriver& driver) : BlockNode(driver) {}
    ~Qcow2Node() override;

    // ---- open (qcow2_open.cc) ----
    Status co_open(OpenContext& ctx, const Qcow2Options& options);
    Status apply_overlap_keys(const qapi::OptionsTree& keys);

    // ---- hooks (qcow2_io.cc) ----
    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override;
    Status co_pdiscard(uint64_t offset, uint64_t bytes) override;
    Status co_flush() override;
    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) override;
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override;
    Status co_close() override;
    Status co_reopen(const OpenFlags& flags) override;
    nlohmann::ordered_json info_specific() override;
    // QEMU's qcow2_get_info: the VM state starts after the last L2 table's
    // coverage of the virtual disk.
    Result<NodeInfo> get_info() override {
        const uint64_t coverage = geom_.l2_coverage();
        return NodeInfo{static_cast<int64_t>(geom_.cluster_size()),
                        static_cast<int64_t>((size() + coverage - 1) / coverage * coverage)};
    }
    std::string backing_filename() const override { return image_.backing_file.value_or(""); }
    std::string backing_format() const override {
        return image_.extensions.backing_format.value_or("");
    }
    // ---- check (qcow2_check.cc) ----
    Status co_check(CheckResult& result, CheckFix fix) override;

    const qcow2::Geometry& geometry() const { return geom_; }
    // The cache geometry chosen at open (for tests and diagnostics).
    struct CacheInfo {
        uint64_t l2_entries = 0;     // slices the L2 cache holds
        uint64_t l2_entry_size = 0;  // bytes per slice
        uint64_t refcount_entries = 0;
    };
    CacheInfo cache_info() const {
        return {l2_cache_.capacity(), l2_slice_bytes(), refcount_cache_.capacity()};
    }
    // Allocates every cluster of the disk (QEMU's preallocate_co): L2
    // entries point at fresh host clusters that read as zeros; falloc/full
    // also reserve the file space.
    Status co_preallocate(Prealloc mode);

  private:
    friend struct Qcow2Internals;

    // ---- mapping / tables ----
    Result<Mapping> get_mapping(uint64_t offset, uint64_t max_bytes);
    // L2 tables are cached in slices of `l2_slice_entries_` entries (QEMU's
    // l2-cache-entry-size). The slice holding entry `l2_index` of the table
    // at `l2_offset`; index it with l2_slice_index().
    Result<MetaCache::Entry*> load_l2_slice(uint64_t l2_offset, uint64_t l2_index);
    // The slice holding the entry of guest offset `guest`.
    Result<MetaCache::Entry*> load_l2(uint64_t l2_offset, uint64_t guest) {
        return load_l2_slice(l2_offset, geom_.l2_index(guest));
    }
    uint64_t l2_slice_bytes() const { return l2_slice_entries_ * geom_.l2_entry_size(); }
    // Guest bytes one slice maps.
    uint64_t l2_slice_coverage() const { return l2_slice_entries_ << geom_.cluster_bits; }
    // Position within its slice of the entry for guest offset `guest`.
    uint64_t l2_slice_index(uint64_t guest) const {
        return geom_.l2_index(guest) % l2_slice_entries_;
    }
    // The whole table: the file's bytes with every cached slice on top.
    Status read_l2_table(uint64_t l2_offset, std::vector<std::byte>& table);
    // Forgets every cached slice of a table (freed, or rewritten whole).
    void drop_l2_table(uint64_t l2_offset);
    Result<MetaCache::Entry*> load_refblock(uint64_t offset);
    Result<MetaCache::Entry*> cache_get(MetaCache& cache, uint64_t offset, bool load, bool is_l2);
    Status write_cache_entry(MetaCache& cache, MetaCache::Entry* entry, bool is_l2);
    Status flush_l2_cache();
    Status flush_refcount_cache();
    Status prepare_l2_writeback();
    Status prepare_refcount_writeback();
    Status set_l2_depends_on_refcount();
    Status set_refcount_depends_on_l2();
    Status flush_caches(bool include_refcounts);
    Status write_l1_entry(uint64_t index);
    Result<MetaCache::Entry*> get_l2_for_write(uint64_t guest_offset, uint64_t* l2_offset);
    Status grow_l1(uint64_t min_size);

    // ---- refcounts (qcow2_refcount.cc) ----
    Result<uint64_t> get_refcount(uint64_t cluster_index);
    Status update_refcount(uint64_t offset, uint64_t length, int64_t delta, bool queue_discard);
    Result<uint64_t> alloc_clusters(uint64_t count);
    // Bytes for one compressed cluster's data (1..cluster_size), packed after
    // the previous one (qcow2_alloc_bytes); every host cluster the range
    // touches gains one reference. Lock held.
    Result<uint64_t> alloc_compressed_bytes(uint64_t size);
    Status free_clusters(uint64_t offset, uint64_t length);
    Status free_l2_entry_clusters(const qcow2::L2Entry& entry, bool queue_discard);
    // `preferred`: a cluster of the block's range to place it at (else the
    // first cluster of the range).
    Status ensure_refblock(uint64_t table_index, bool* created, uint64_t preferred = ~uint64_t{0});
    Status grow_reftable(uint64_t needed_index);
    Status mark_dirty();
    Status mark_clean();
    Status write_header_field(uint64_t offset, const void* data, size_t len);
    Status rewrite_header();

    // ---- io helpers ----
    Status read_guest(uint64_t offset, uint64_t bytes, IoVector& qiov);
    Status read_compressed(const qcow2::L2Entry& entry, std::vector<std::byte>& cluster);
    Status read_file_padded(uint64_t offset, std::byte* out, uint64_t len);
    Status write_allocating(uint64_t offset, uint64_t bytes, IoVector& qiov, uint64_t qiov_offset,
                            uint64_t* done);
    // Whether an L2 entry (standard L2) reads as zeros in this image.
    bool reads_as_zeros(const qcow2::L2Entry& entry) const;
    // A cluster of zeros shared by all requests (read-only use).
    std::byte* zero_cluster();
    std::vector<std::byte> zero_cluster_;
    Status write_subclusters(uint64_t offset, uint64_t max, IoVector& qiov, uint64_t qoff,
                             uint64_t* done, bool* handled);
    // ---- compressed writes (qcow2_compress.cc) ----
    // One whole cluster (or the padded last one); bytes == 0 is QEMU's final
    // empty write, which rounds the file up to whole sectors.
    Status write_compressed(uint64_t offset, uint64_t bytes, IoVector& qiov);
    Status shrink_locked(uint64_t new_size);
    Status shrink_reftable_locked();
    Status extend_file_to_sector();
    Status zero_or_discard_cluster(uint64_t guest_cluster, bool discard, bool unmap,
                                   bool full_discard);

    // ---- safety ----
    // A read maps a cluster under the lock and reads it without: a cluster
    // freed meanwhile must not be reallocated (and overwritten) before that
    // read ends. Reads register under the epoch current at mapping time;
    // every free starts a new epoch; allocating requests call this (lock
    // held, before looking at any metadata) to wait for reads older than
    // the last free.
    void wait_for_old_reads();
    uint64_t read_epoch_ = 0;
    uint64_t last_free_epoch_ = 0;
    std::map<uint64_t, int> reads_by_epoch_;
    CoQueue read_waiters_;

    Status check_overlap(uint32_t ignore, uint64_t offset, uint64_t length);
    Error signal_corruption(const std::string& message);
    Status check_usable() const;
    void rebuild_metadata_sets();

    // ---- state ----
    BdrvChild* file_ = nullptr;
    BdrvChild* backing_ = nullptr;
    qcow2::ImageHeader image_;
    qcow2::Geometry geom_;
    std::vector<uint64_t> l1_;
    std::vector<uint64_t> reftable_;
    std::vector<qcow2::SnapshotEntry> snapshots_;
    uint64_t snapshot_table_bytes_ = 0;
    std::unordered_set<uint64_t> l2_clusters_;        // active L2 tables (cluster index)
    std::unordered_set<uint64_t> refblock_clusters_;  // refcount blocks (cluster index)
    MetaCache l2_cache_{16};
    uint64_t l2_slice_entries_ = 1;
    MetaCache refcount_cache_{4};
    bool l2_depends_on_refcount_ = false;
    bool refcount_depends_on_l2_ = false;
    bool l2_depends_on_flush_ = false;
    bool freed_since_flush_ = false;
    uint64_t free_cluster_index_ = 0;
    // Where the next compressed data goes (0: start a new host cluster), and
    // the refcount its host cluster had when we left it.
    uint64_t free_byte_offset_ = 0;
    uint64_t free_byte_refcount_ = 0;
    // Compressed writes take a ticket on arrival and allocate in ticket order
    // (see write_compressed).
    CoSequencer compressed_order_;
    std::vector<std::pair<uint64_t, uint64_t>> pending_discards_;
    CoMutex lock_;
    AllocRanges alloc_ranges_;
    bool lazy_refcounts_ = false;
    bool dirty_ = false;  // on-disk dirty bit set by us (or found)
    bool corrupt_ = false;
    bool unusable_ = false;
    bool corruption_reported_ = false;
    uint32_t overlap_mask_ = kOverlapCached;
    bool pass_discard_request_ = false;
    bool pass_discard_snapshot_ = true;
    bool pass_discard_other_ = false;
    int metadata_preallocation_ = -1;  // -1: not yet detected
    std::string backing_display_;
};

// Compression (qcow2_compress.cc). `type` is the header compression type.
Status decompress_cluster(uint8_t type, const std::byte* src, size_t src_len, std::byte* dst,
                          size_t dst_len);
// Returns the compressed bytes, or nullopt when they would not be smaller
// than `max_len`. Thread-safe (per-thread codec contexts).
Result<std::optional<std::vector<std::byte>>> compress_cluster(uint8_t type, const std::byte* src,
                                                               size_t src_len, size_t max_len);
// The same on a worker of the loop's thread pool (QEMU's qcow2_co_compress),
// so N writers compress on N threads; `src` must stay valid until it returns.
Result<std::optional<std::vector<std::byte>>> co_compress_cluster(uint8_t type,
                                                                  const std::byte* src,
                                                                  size_t src_len, size_t max_len);

}  // namespace coblock::qcow2drv
