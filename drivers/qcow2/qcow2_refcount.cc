// Refcount maintenance: lookups, updates, first-fit cluster allocation,
// refcount block creation and refcount table growth (qcow2-notes.md §6.4,
// §6.5), the dirty bit of lazy refcounts (§7) and header field updates.
#include <algorithm>
#include <cstdio>

#include "block/io.h"
#include "drivers/qcow2/qcow2_node.h"
#include "formats/qcow2/refcount.h"

namespace coblock::qcow2drv {

using qcow2::hex_string;

Result<uint64_t> Qcow2Node::get_refcount(uint64_t cluster_index) {
    const uint64_t entries = geom_.refcount_block_entries();
    const uint64_t t = cluster_index / entries;
    if (t >= reftable_.size() || reftable_[t] == 0) return uint64_t{0};
    ASSIGN_OR_RETURN(MetaCache::Entry * block, load_refblock(reftable_[t]));
    return qcow2::get_refcount(block->data, cluster_index % entries, geom_.refcount_order);
}

Status Qcow2Node::update_refcount(uint64_t offset, uint64_t length, int64_t delta,
                                  bool queue_discard) {
    if (length == 0) return {};
    if (delta < 0) TRY(set_refcount_depends_on_l2());
    const uint64_t cs = geom_.cluster_size();
    const uint64_t entries = geom_.refcount_block_entries();
    const uint64_t first = offset / cs;
    const uint64_t last = (offset + length - 1) / cs;
    for (uint64_t c = first; c <= last; ++c) {
        const uint64_t t = c / entries;
        // QEMU's alloc_refcount_block/load_refcount_block events, per lookup.
        ::coblock::co_debug_event(file_, BlkdebugEvent::kRefblockAlloc);
        if (t < reftable_.size() && reftable_[t] != 0)
            ::coblock::co_debug_event(file_, BlkdebugEvent::kRefblockLoad);
        if (t >= reftable_.size() || reftable_[t] == 0) {
            if (delta < 0)
                return signal_corruption("Refcount of cluster " + hex_string(c * cs) +
                                         " would drop below zero (no refcount block)");
            bool created = false;
            TRY(ensure_refblock(t, &created));
        }
        ASSIGN_OR_RETURN(MetaCache::Entry * block, load_refblock(reftable_[t]));
        ASSIGN_OR_RETURN(uint64_t old,
                         qcow2::get_refcount(block->data, c % entries, geom_.refcount_order));
        uint64_t now;
        if (delta < 0) {
            if (old < static_cast<uint64_t>(-delta))
                return signal_corruption("Refcount of cluster " + hex_string(c * cs) +
                                         " would drop below zero");
            now = old - static_cast<uint64_t>(-delta);
        } else {
            if (old > geom_.refcount_max() - static_cast<uint64_t>(delta))
                return make_error(ErrorKind::kInvalidArgument,
                                  "qcow2: refcount of cluster " + hex_string(c * cs) +
                                      " would exceed refcount_bits " +
                                      std::to_string(geom_.refcount_bits()));
            now = old + static_cast<uint64_t>(delta);
        }
        TRY(qcow2::set_refcount(block->data, c % entries, geom_.refcount_order, now));
        block->dirty = true;
        if (now == 0) {
            last_free_epoch_ = ++read_epoch_;
            free_cluster_index_ = std::min(free_cluster_index_, c);
            freed_since_flush_ = true;
            l2_clusters_.erase(c);
            drop_l2_table(c * cs);
            if (queue_discard) pending_discards_.emplace_back(c * cs, cs);
            ::coblock::co_debug_event(file_, BlkdebugEvent::kClusterFree);
        }
    }
    if (delta > 0) TRY(set_l2_depends_on_refcount());
    return {};
}

Status Qcow2Node::ensure_refblock(uint64_t t, bool* created, uint64_t preferred) {
    *created = false;
    if (t >= reftable_.size()) {
        TRY(grow_reftable(t));
        *created = true;
        if (t < reftable_.size() && reftable_[t] != 0) return {};
    }
    if (reftable_[t] != 0) return {};
    if (t == 0) return signal_corruption("Refcount table has no block for the header cluster");
    const uint64_t cs = geom_.cluster_size();
    const uint64_t entries = geom_.refcount_block_entries();
    // Every cluster this block will describe has refcount 0 (there was no
    // block), so any of them is free: the block describes itself.
    const uint64_t c = preferred / entries == t ? preferred : t * entries;
    const uint64_t block_offset = c * cs;
    if (block_offset + cs > qcow2::kMaxHostOffset)
        return make_error(ErrorKind::kNoSpace, "qcow2: image file would exceed 2^56 bytes");
    std::vector<std::byte> data(cs);
    TRY(qcow2::set_refcount(data, c % entries, geom_.refcount_order, 1));
    TRY(check_overlap(0, block_offset, cs));
    ::coblock::co_debug_event(file_, BlkdebugEvent::kRefblockAllocWrite);
    TRY(co_child_pwrite(file_, block_offset, data.data(), data.size()));
    TRY(co_child_flush(file_));
    refcount_cache_.insert(block_offset, std::move(data));
    refblock_clusters_.insert(c);
    reftable_[t] = block_offset;
    std::byte word[8];
    store_be<uint64_t>(word, block_offset);
    ::coblock::co_debug_event(file_, BlkdebugEvent::kRefblockAllocHookup);
    TRY(co_child_pwrite(file_, image_.header.refcount_table_offset + t * 8, word, 8));
    TRY(co_child_flush(file_));
    *created = true;
    return {};
}

Status Qcow2Node::grow_reftable(uint64_t needed) {
    ::coblock::co_debug_event(file_, BlkdebugEvent::kReftableGrow);
    const uint64_t cs = geom_.cluster_size();
    const uint64_t entries = geom_.refcount_block_entries();
    const uint64_t old_n = reftable_.size();
    // New self-describing structures in the first range no block covers:
    // `blocks` refcount blocks, then the new table, from cluster t_new * E.
    // The blocks describe ranges t_new.., which hold all of them.
    const uint64_t t_new = old_n;
    uint64_t new_n = std::max(needed + 1, old_n + old_n / 2);
    uint64_t table_clusters = 0, blocks = 1;
    for (;;) {
        table_clusters = div_round_up(new_n * 8, cs);
        blocks = 1;
        while (blocks * entries < blocks + table_clusters)
            ++blocks;
        if (t_new + blocks <= new_n) break;
        new_n = t_new + blocks;
    }
    new_n = table_clusters * cs / 8;
    if (table_clusters * cs > qcow2::kMaxRefcountTableBytes)
        return make_error(ErrorKind::kNoSpace, "qcow2: refcount table would exceed 8 MiB (" +
                                                   std::to_string(table_clusters) + " clusters)");
    const uint64_t base_cluster = t_new * entries;
    const uint64_t block_offset = base_cluster * cs;
    const uint64_t table_offset = block_offset + blocks * cs;
    if (table_offset + table_clusters * cs > qcow2::kMaxHostOffset)
        return make_error(ErrorKind::kNoSpace, "qcow2: image file would exceed 2^56 bytes");
    std::vector<std::byte> block_bytes(blocks * cs);
    for (uint64_t x = 0; x < blocks + table_clusters; ++x) {
        MutableByteSpan block(block_bytes.data() + (x / entries) * cs, cs);
        TRY(qcow2::set_refcount(block, x % entries, geom_.refcount_order, 1));
    }
    TRY(check_overlap(0, block_offset, cs * (blocks + table_clusters)));
    ::coblock::co_debug_event(file_, BlkdebugEvent::kRefblockAllocWriteBlocks);
    TRY(co_child_pwrite(file_, block_offset, block_bytes.data(), block_bytes.size()));
    TRY(co_child_flush(file_));
    std::vector<uint64_t> table = reftable_;
    table.resize(new_n, 0);
    for (uint64_t j = 0; j < blocks; ++j)
        table[t_new + j] = block_offset + j * cs;
    std::vector<std::byte> table_bytes = qcow2::encode_be64_table(table);
    ::coblock::co_debug_event(file_, BlkdebugEvent::kRefblockAllocWriteTable);
    TRY(co_child_pwrite(file_, table_offset, table_bytes.data(), table_bytes.size()));
    TRY(co_child_flush(file_));
    std::byte fields[12];
    store_be<uint64_t>(fields, table_offset);
    store_be<uint32_t>(fields + 8, static_cast<uint32_t>(table_clusters));
    ::coblock::co_debug_event(file_, BlkdebugEvent::kRefblockAllocSwitchTable);
    TRY(co_child_pwrite(file_, 48, fields, 12));
    TRY(co_child_flush(file_));
    const uint64_t old_offset = image_.header.refcount_table_offset;
    const uint64_t old_clusters = image_.header.refcount_table_clusters;
    image_.header.refcount_table_offset = table_offset;
    image_.header.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
    reftable_ = std::move(table);
    for (uint64_t j = 0; j < blocks; ++j) {
        refcount_cache_.insert(block_offset + j * cs,
                               std::vector<std::byte>(block_bytes.begin() + j * cs,
                                                      block_bytes.begin() + (j + 1) * cs));
        refblock_clusters_.insert(base_cluster + j);
    }
    TRY(update_refcount(old_offset, old_clusters * cs, -1, pass_discard_other_));
    return {};
}

Result<uint64_t> Qcow2Node::alloc_clusters(uint64_t count) {
    if (freed_since_flush_) {
        // Never hand out a cluster whose old reference may still be on disk
        // (qcow2-notes.md §6.3 caveat): make the L2 changes durable first.
        TRY(flush_l2_cache());
        TRY(co_child_flush(file_));
        freed_since_flush_ = false;
    }
    const uint64_t cs = geom_.cluster_size();
    const uint64_t entries = geom_.refcount_block_entries();
    // A new refcount block takes the first cluster of its range, which can
    // split the run found; runs of at most entries - 1 clusters always fit
    // after it, so the restarts end. Longer runs get a bounded number.
    for (int attempt = 0;; ++attempt) {
        if (attempt > 64)
            return make_error(ErrorKind::kNoSpace, "qcow2: cannot find " + std::to_string(count) +
                                                       " contiguous free clusters");
        if (attempt == 0) ::coblock::co_debug_event(file_, BlkdebugEvent::kClusterAlloc);
        const uint64_t scan_start = std::max<uint64_t>(free_cluster_index_, 1);
        uint64_t run_start = scan_start, run = 0, i = scan_start;
        uint64_t first_free = ~uint64_t{0};
        while (run < count) {
            if ((i + 1) * cs > qcow2::kMaxHostOffset)
                return make_error(ErrorKind::kNoSpace, "qcow2: no free clusters below 2^56");
            ASSIGN_OR_RETURN(uint64_t rc, get_refcount(i));
            if (rc == 0) {
                if (first_free == ~uint64_t{0}) first_free = i;
                ++run;
            } else {
                run = 0;
                run_start = i + 1;
            }
            ++i;
        }
        bool restart = false;
        for (uint64_t t = run_start / entries; t <= (run_start + count - 1) / entries; ++t) {
            if (t < reftable_.size() && reftable_[t] != 0) continue;
            bool created = false;
            // Right after the run, the block leaves the run intact.
            TRY(ensure_refblock(t, &created, run_start + count));
            if (created) restart = true;
            break;
        }
        if (restart) continue;
        // A free cluster that holds metadata means a refcount of 0 for a
        // used cluster: stop before counting it (which would write the
        // refcount block) rather than at the write that would destroy it.
        TRY(check_overlap(0, run_start * cs, count * cs));
        TRY(update_refcount(run_start * cs, count * cs, 1, false));
        // The hint is the first cluster that may be free (QEMU's
        // free_cluster_index): past this run when the run started there.
        free_cluster_index_ = first_free == run_start ? run_start + count : first_free;
        return run_start * cs;
    }
}

// QEMU's qcow2_alloc_bytes: compressed data is packed byte-tight. The next
// piece starts where the last one ended, in the same host cluster, or runs
// on into the very next cluster when that is the one the allocator hands
// out; otherwise it starts a fresh cluster. Each host cluster the piece
// touches gets one reference (§11.5), so freeing it later drops exactly
// those. Packing stops when the cluster's refcount is at refcount_max, or
// when its refcount is not the one we left (something freed or reused it
// meanwhile: never write into a cluster we cannot account for).
Result<uint64_t> Qcow2Node::alloc_compressed_bytes(uint64_t size) {
    const uint64_t cs = geom_.cluster_size();
    if (size == 0 || size > cs)
        return invalid_argument("qcow2: compressed allocation of " + std::to_string(size) +
                                " bytes (cluster size " + std::to_string(cs) + ")");
    ::coblock::co_debug_event(file_, BlkdebugEvent::kClusterAllocBytes);
    uint64_t offset = free_byte_offset_;
    if (offset != 0) {
        ASSIGN_OR_RETURN(uint64_t rc, get_refcount(offset / cs));
        if (rc != free_byte_refcount_ || rc >= geom_.refcount_max()) offset = 0;
    }
    if (offset != 0 && cs - offset % cs >= size) {
        TRY(update_refcount(offset, size, 1, false));
    } else {
        // alloc_clusters gives the new cluster its first reference.
        ASSIGN_OR_RETURN(uint64_t fresh, alloc_clusters(1));
        if (offset != 0 && (offset / cs + 1) * cs == fresh) {
            TRY(update_refcount(offset, 1, 1, false));  // the tail of the current one
        } else {
            offset = fresh;
        }
    }
    free_byte_offset_ = (offset + size) % cs == 0 ? 0 : offset + size;
    if (free_byte_offset_ != 0) {
        ASSIGN_OR_RETURN(free_byte_refcount_, get_refcount(free_byte_offset_ / cs));
    }
    return offset;
}

Status Qcow2Node::free_clusters(uint64_t offset, uint64_t length) {
    return update_refcount(offset, length, -1, pass_discard_other_);
}

Status Qcow2Node::free_l2_entry_clusters(const qcow2::L2Entry& entry, bool queue_discard) {
    if (entry.compressed) {
        qcow2::ClusterRange range = qcow2::compressed_host_clusters(entry, geom_);
        const uint64_t cs = geom_.cluster_size();
        return update_refcount(range.first * cs, (range.last - range.first + 1) * cs, -1,
                               queue_discard);
    }
    if (entry.host_offset == 0) return {};
    return update_refcount(entry.host_offset, geom_.cluster_size(), -1, queue_discard);
}

Status Qcow2Node::write_header_field(uint64_t offset, const void* data, size_t len) {
    TRY(co_child_pwrite(file_, offset, data, len));
    return co_child_flush(file_);
}

Status Qcow2Node::mark_dirty() {
    if (!lazy_refcounts_ || dirty_) return {};
    // The refcount blocks on disk are about to lag behind: say so first.
    TRY(co_child_flush(file_));
    image_.header.incompatible_features |= qcow2::kIncompatDirty;
    std::byte word[8];
    store_be<uint64_t>(word, image_.header.incompatible_features);
    TRY(write_header_field(72, word, 8));
    dirty_ = true;
    return {};
}

Status Qcow2Node::mark_clean() {
    if (!dirty_) return {};
    TRY(flush_caches(true));
    TRY(co_child_flush(file_));
    image_.header.incompatible_features &= ~qcow2::kIncompatDirty;
    std::byte word[8];
    store_be<uint64_t>(word, image_.header.incompatible_features);
    TRY(write_header_field(72, word, 8));
    dirty_ = false;
    return {};
}

Status Qcow2Node::rewrite_header() {
    ASSIGN_OR_RETURN(qcow2::ImageHeader normalized, qcow2::normalize_for_rewrite(image_));
    ASSIGN_OR_RETURN(std::vector<std::byte> bytes, qcow2::encode_image_header(normalized));
    TRY(co_child_pwrite(file_, 0, bytes.data(), bytes.size()));
    TRY(co_child_flush(file_));
    image_ = std::move(normalized);
    return {};
}

}  // namespace coblock::qcow2drv
